"""``labctl report``: metrics, confusion matrix, rates and faults read back from a run record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from labctl.cli import main
from labctl.records.report import build_report, confusion_matrix, segmentation_scores
from labctl.records.run_record import Column, RunRecord
from labctl.runner.loop import METADATA_COLUMNS


def _classification_run(path: Path, n: int = 50, done_upto: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, n)
    preds = np.where(rng.random(n) < 0.8, labels, (labels + 1) % 4)
    cols = [Column("label", (), "i8"), Column("prediction", (), "i8"), Column("logits", (4,), "f4"), *METADATA_COLUMNS]
    with RunRecord.create(path, n, cols, {"task": "classification", "method": "optics-aware"}) as rec:
        upto = n if done_upto is None else done_upto
        idx = np.arange(upto)
        rec.write_batch(idx, {"label": labels[idx], "prediction": preds[idx], "logits": np.zeros((upto, 4)),
                              "frame_number": idx, "timestamp_s": idx * 0.01, "exposure_s": np.full(upto, 1e-3)})
        rec.log_event("timeout", "camera: no frame", 3)
        rec.log_event("timeout", "camera: no frame", 9)
        rec.log_event("disconnect", "camera: link lost", 20)
    return labels, preds


def test_report_counts_accuracy_confusion_rates_and_faults(tmp_path: Path) -> None:
    labels, preds = _classification_run(tmp_path / "run.h5")
    report = build_report(tmp_path / "run.h5")
    assert report.metrics["accuracy"] == np.mean(labels == preds)
    assert report.confusion.sum() == 50 and np.trace(report.confusion) == np.sum(labels == preds)
    assert report.camera_frames_per_s == 100.0
    assert report.faults == {"timeout": 2, "disconnect": 1}


def test_report_cli_saves_the_confusion_png_and_ends_with_json(tmp_path: Path) -> None:
    labels, preds = _classification_run(tmp_path / "run.h5", done_upto=30)
    result = CliRunner().invoke(main, ["report", str(tmp_path / "run.h5")])
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["done"] == 30 and last["inputs"] == 50
    assert last["accuracy"] == np.mean(labels[:30] == preds[:30])
    assert "--resume" in result.output
    assert (tmp_path / "run.confusion.png").stat().st_size > 1000


def test_report_on_a_file_that_is_not_a_run_fails_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "x.h5"
    bad.write_text("hello")
    result = CliRunner().invoke(main, ["report", str(bad)])
    assert result.exit_code != 0 and "not a readable HDF5" in result.output


def test_confusion_and_segmentation_scores() -> None:
    c = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3)
    assert c.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    truth = np.zeros((1, 4, 4), np.uint8)
    truth[0, :2] = 1
    pred = np.zeros((1, 4, 4), np.uint8)
    pred[0, 1:3] = 1
    s = segmentation_scores(truth, pred)
    assert s["iou"] == 4 / 12 and s["dice"] == 8 / 16
