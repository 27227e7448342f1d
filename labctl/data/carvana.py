"""Image folder with masks for segmentation, in the Kaggle Carvana layout:
``DIR/train/NAME.jpg`` and ``DIR/train_masks/NAME_mask.gif`` (``.png`` masks and mask files named
like their image are accepted too). Masks are binary: any nonzero pixel is foreground.

Every fifth image (sorted by name) is held out for testing, so the split does not depend on a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from labctl.data.dataset import Dataset, Split
from labctl.data.errors import DataFileError

DEFAULT_SIZE = 64
IMAGE_DIR, MASK_DIR = "train", "train_masks"
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
_MASK_SUFFIXES = (".gif", ".png", ".bmp", ".tif")
_TEST_EVERY = 5


def _mask_for(image: Path, mask_dir: Path) -> Path:
    for stem in (f"{image.stem}_mask", image.stem):
        for suffix in _MASK_SUFFIXES:
            candidate = mask_dir / (stem + suffix)
            if candidate.is_file():
                return candidate
    raise DataFileError(image, f"no mask for this image in {mask_dir} (looked for {image.stem}_mask.gif/.png)")


def _read(path: Path, mode: str, size: int, nearest: bool = False) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.draft(mode, (size, size))  # JPEG: decode at reduced scale, much faster
            resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
            return np.asarray(im.convert(mode).resize((size, size), resample))
    except (OSError, UnidentifiedImageError) as exc:
        raise DataFileError(path, f"cannot read image: {exc}") from None


def load_carvana_dataset(directory: Path, spec: str, size: int = DEFAULT_SIZE) -> Dataset:
    image_dir, mask_dir = directory / IMAGE_DIR, directory / MASK_DIR
    for d in (image_dir, mask_dir):
        if not d.is_dir():
            raise DataFileError(d, f"no such directory; expected the Carvana layout DIR/{IMAGE_DIR}/ and DIR/{MASK_DIR}/")
    image_paths = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if len(image_paths) < 2:
        raise DataFileError(image_dir, f"found {len(image_paths)} image(s); need at least 2 (train and test)")
    images = np.stack([_read(p, "RGB", size) for p in image_paths]).transpose(0, 3, 1, 2)
    masks = np.stack([_read(_mask_for(p, mask_dir), "L", size, nearest=True) for p in image_paths]) > 0
    test = np.zeros(len(image_paths), dtype=bool)
    test[_TEST_EVERY - 1 :: _TEST_EVERY] = True
    if not test.any():
        test[-1] = True
    x = torch.from_numpy(np.ascontiguousarray(images))
    y = torch.from_numpy(masks.astype(np.int64))
    tr, te = torch.from_numpy(~test), torch.from_numpy(test)
    return Dataset(spec, "segmentation", 2, Split(x[tr], y[tr]), Split(x[te], y[te]))
