"""Data sets for training and evaluating teachers and students, chosen by a ``--data`` spec:

``digits``           scikit-learn's handwritten digits, upsampled (embedded, classification)
``fashion-mini``     a class-balanced Fashion-MNIST subset, 6000 train / 1000 test (embedded, classification)
``shapes``           procedurally drawn shapes with masks (embedded, segmentation)
``idx:DIR``          MNIST / Fashion-MNIST IDX files (optionally .gz) in DIR
``cifar10:DIR``      CIFAR-10 python batches in DIR
``carvana:DIR``      images in DIR/train, masks in DIR/train_masks (segmentation)
"""

from labctl.data.dataset import Dataset, Split
from labctl.data.errors import DataError, DataFileError, DataSpecError
from labctl.data.spec import load_dataset

__all__ = ["DataError", "DataFileError", "DataSpecError", "Dataset", "Split", "load_dataset"]
