"""The demo's figure: a few test inputs through the (calibrated) bench, one row each: the image on the
input modulator, the camera frame it gave, the channel tiles as the runner read them (what the
electronic back end receives) and the prediction against the label.

The inputs are run through the runner like any run (:func:`labctl.runner.session.run_masks`, frames
saved) into their own small record beside the figure, so the figure shows frames and predictions of
one capture.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from drivers.bench import BenchSpec
from labctl.data.dataset import Dataset

#: inputs shown by default
FIGURE_INPUTS = 4


def class_names(data: Dataset) -> list[str]:
    """Names of the data set's classes: the garments for the embedded Fashion-MNIST subset, else numbers."""
    if data.spec == "fashion-mini":
        from labctl.data.fashion_mini import CLASSES

        return list(CLASSES)
    return [str(k) for k in range(data.num_classes)]


def tile_mosaic(channels: np.ndarray, gap: int = 1) -> np.ndarray:
    """(C, n, n) → one image with the channels on a near-square grid, NaN between them."""
    c, n = channels.shape[0], channels.shape[-1]
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    mosaic = np.full((rows * (n + gap) - gap, cols * (n + gap) - gap), np.nan, dtype=np.float32)
    for k in range(c):
        r, q = divmod(k, cols)
        mosaic[r * (n + gap) : r * (n + gap) + n, q * (n + gap) : q * (n + gap) + n] = channels[k]
    return mosaic


def read_channels(spec: BenchSpec, masks_path: Path, frames: np.ndarray) -> np.ndarray:
    """The channel tiles of ``frames`` read as the runner reads them (calibrated registration and
    camera correction of ``spec``'s bench), in camera DN: (B, C, n, n)."""
    from calibration.session import open_session
    from labctl.masks.mask_file import MaskFile
    from labctl.runner.bench_calibration import BenchCalibration
    from labctl.runner.optical_inference import OpticalInference
    from labctl.runner.session import readout_oversample, student_for_masks

    masks = MaskFile.load(masks_path)
    student = student_for_masks(masks)
    with open_session(spec) as session:
        calib = BenchCalibration.for_session(session, masks.layout, warn=False)
    processor = OpticalInference(
        student.model.back, masks.layout, calib.affine, "classification", student.config.num_classes,
        correct=calib.correct_frames, oversample=readout_oversample(student), warp=calib.camera_warp,
    )
    return processor.readout(frames).numpy()


def save_demo_figure(
    spec: BenchSpec, masks_path: str | Path, data: Dataset, out_png: str | Path, n_inputs: int = FIGURE_INPUTS,
    title: str = "",
) -> dict:
    """Run the first ``n_inputs`` test images through the bench (frames kept, record beside
    ``out_png``), draw the figure and return what it shows (indices, labels, predictions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labctl.records.run_record import RunRecord
    from labctl.runner.session import RunOptions, run_masks

    if data.task != "classification":
        raise ValueError(f"the demo figure is drawn for classification; {data.spec} is a {data.task} set")
    out_png = Path(out_png)
    n_inputs = max(1, min(n_inputs, len(data.test)))
    _, record_path = run_masks(
        spec, masks_path, data, out_png.with_suffix(".h5"),
        options=RunOptions(limit=n_inputs, batch_size=n_inputs, save_frames=True),
    )
    with RunRecord.open(record_path) as record:
        frames = record.frames(slice(0, n_inputs)).astype(np.float32)
        predictions = record.column("prediction")[:n_inputs]
        logits = record.column("logits")[:n_inputs]
        labels = record.column("label")[:n_inputs]
        groups = int(record.attr("frames_per_input") or 1)
    channels = read_channels(spec, Path(masks_path), frames)
    names = class_names(data)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)

    fig, axes = plt.subplots(n_inputs, 4, figsize=(12.5, 2.9 * n_inputs), gridspec_kw={"width_ratios": [1, 1.25, 1.25, 1.5]},
                             squeeze=False)
    headers = ["input (modulator)", "camera frame" + (f" (group 1 of {groups})" if groups > 1 else ""),
               f"channel tiles, read out ({channels.shape[1]} channels)", "prediction (bench)"]
    for row in range(n_inputs):
        image = data.test.images[row, 0].numpy()
        frame = frames[row, 0] if frames.ndim == 4 else frames[row]
        ax_in, ax_frame, ax_tiles, ax_pred = axes[row]
        ax_in.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax_frame.imshow(frame, cmap="inferno", vmin=float(np.percentile(frame, 1)), vmax=float(np.percentile(frame, 99.9)))
        mosaic = tile_mosaic(channels[row])
        finite = mosaic[np.isfinite(mosaic)]
        ax_tiles.imshow(np.ma.masked_invalid(mosaic), cmap="viridis", vmin=float(np.percentile(finite, 1)),
                        vmax=float(np.percentile(finite, 99.5)))
        for ax in (ax_in, ax_frame, ax_tiles):
            ax.set_xticks([])
            ax.set_yticks([])
        right = int(predictions[row]) == int(labels[row])
        colours = ["#bbbbbb"] * len(names)
        colours[int(labels[row])] = "#2a9d4b"
        if not right:
            colours[int(predictions[row])] = "#d1495b"
        y = np.arange(len(names))
        ax_pred.barh(y, probs[row], color=colours)
        ax_pred.set_yticks(y, names, fontsize=8)
        ax_pred.invert_yaxis()
        ax_pred.set_xlim(0, 1)
        ax_pred.tick_params(axis="x", labelsize=8)
        verdict = "right" if right else "wrong"
        ax_pred.set_title(f"predicted {names[int(predictions[row])]}, label {names[int(labels[row])]}: {verdict}",
                          fontsize=9, color="#2a9d4b" if right else "#d1495b")
        ax_in.set_ylabel(f"test #{row}", fontsize=9)
        if row == 0:
            for ax, header in zip((ax_in, ax_frame, ax_tiles), headers[:3]):
                ax.set_title(header, fontsize=10)
    axes[-1][3].set_xlabel("softmax of the logits (green: label; red: a wrong prediction)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.975 if title else 1))
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return {"png": str(out_png), "record": str(record_path), "inputs": list(range(n_inputs)),
            "labels": labels.tolist(), "predictions": predictions.tolist()}
