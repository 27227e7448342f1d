"""Masks to bench to records, end to end on a small simulated bench: export, run, resume, report,
and the refusals that protect devices and records."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from drivers.bench import BenchSpec
from labctl.cli import main
from labctl.data import load_dataset
from labctl.masks.export import export_masks
from labctl.masks.mask_file import MaskFile, MaskFileError
from labctl.masks.twin_check import FIT_IMAGES
from labctl.models.bench_layout import layout_for_bench
from labctl.optics.layout import OpticalLayout
from labctl.records.run_record import RunRecord, RunRecordError
from labctl.optics.layout import OpticalInputError
from labctl.runner.session import RunOptions, run_masks
from labctl.training.loop import TrainSettings
from labctl.training.train import train_student
from tests.conftest import bench_toml

SIZE = 16


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A small optics-aware student (a few epochs on digits at 16 px) and an SCLC one, with the bench file."""
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("session")
    bench_file = root / "bench.toml"
    bench_file.write_text(bench_toml(ideal=True, noise=False))
    spec = BenchSpec.from_file(bench_file)
    data = load_dataset("digits", size=SIZE)
    layout = layout_for_bench(spec, SIZE, 4)
    settings = TrainSettings(epochs=3, batch_size=64, lr=1e-2, train_limit=600)
    optics = train_student(data, None, settings, kind="optics_aware", out_dir=root / "optics", layout=layout)
    sclc = train_student(data, None, TrainSettings(epochs=1, train_limit=200), kind="sclc", out_dir=root / "sclc", channels=(4,))
    return {"root": root, "spec": spec, "bench_file": bench_file, "data": data, "optics": optics, "sclc": sclc}


def test_export_run_and_report_through_the_cli(trained, tmp_path: Path) -> None:
    runner = CliRunner()
    masks = tmp_path / "masks.h5"
    result = runner.invoke(main, ["export-masks", str(trained["optics"].path.parent), "--bench", str(trained["bench_file"]), "--out", str(masks)])
    assert result.exit_code == 0, result.output
    m = MaskFile.load(masks)
    assert m.method == "optics-aware" and m.model["sha256"] and m.calibration["slm_phase"] == "linear"
    run = tmp_path / "run.h5"
    args = ["run", "--bench", str(trained["bench_file"]), "--masks", str(masks), "--data", "digits", "--out", str(run),
            "--limit", "80", "--batch-size", "16", "--save-frames"]
    refused = runner.invoke(main, args)  # digits are 28 px, the masks were made for 16 px
    assert refused.exit_code != 0 and "made for 16x16-px images" in refused.output and not run.exists()
    result = runner.invoke(main, [*args, "--resize"])
    assert result.exit_code == 0, result.output
    assert "run complete: 80 input(s)" in result.output
    result = runner.invoke(main, ["report", str(run)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    digital = trained["optics"].metrics["accuracy"]
    assert summary["done"] == 80 and summary["accuracy"] > 0.5
    assert abs(summary["accuracy"] - digital) < 0.2, "the ideal bench should reproduce the twin it was trained on"
    with RunRecord.open(run) as rec:
        assert rec.has_frames and rec.frames(slice(0, 1)).shape == (1, 120, 120)
        assert rec.attr("model_sha256") == m.model["sha256"]
        assert rec.attr("devices")["camera"]["driver"] == "mock"
        assert rec.attr("readout")["exposure_s"] > 0


def test_interrupted_run_resumes_each_input_once_and_refuses_another_model(trained, tmp_path: Path) -> None:
    masks = tmp_path / "masks.h5"
    export_masks(trained["optics"].path, trained["spec"], masks)
    out = tmp_path / "run.h5"
    stop = threading.Event()
    options = RunOptions(batch_size=8, limit=48)
    first, _ = run_masks(trained["spec"], masks, trained["data"], out, options=options,
                         on_progress=lambda done, total: stop.set() if done >= 16 else None, stop=stop)
    assert first.interrupted and 16 <= first.processed < 48
    with pytest.raises(RunRecordError, match="exists.*--resume"):
        run_masks(trained["spec"], masks, trained["data"], out, options=options)
    second, _ = run_masks(trained["spec"], masks, trained["data"], out, options=options, resume=True)
    assert second.skipped_done == first.processed and second.processed == 48 - first.processed
    with RunRecord.open(out) as rec:
        assert rec.done.all() and len(set(rec.column("frame_number").tolist())) == 48
        assert any(e["kind"] == "resumed" for e in rec.events())
    other = tmp_path / "other_masks.h5"
    export_masks(trained["sclc"].path, trained["spec"], other, encoding="double-phase")
    with pytest.raises(RunRecordError, match="another model sha256"):
        run_masks(trained["spec"], other, load_dataset("digits", size=SIZE), out, options=options, resume=True)


def test_masks_for_another_bench_or_image_size_are_refused_before_any_write(trained, tmp_path: Path) -> None:
    masks = tmp_path / "masks.h5"
    export_masks(trained["optics"].path, trained["spec"], masks)
    other = BenchSpec.from_toml(bench_toml().replace("wavelength_m = 532e-9", "wavelength_m = 633e-9"))
    with pytest.raises(MaskFileError, match="wavelength"):
        run_masks(other, masks, trained["data"], tmp_path / "a.h5")
    with pytest.raises(OpticalInputError, match="16x16"):
        run_masks(trained["spec"], masks, load_dataset("digits", size=20), tmp_path / "b.h5")
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "b.h5").exists()
    with h5py.File(masks, "r+") as h5:
        h5["phase_rad"][0, 0] = np.nan
    with pytest.raises(MaskFileError, match="NaN"):
        MaskFile.load(masks)


def test_sclc_export_paths_place_filters_on_the_slm(trained, tmp_path: Path, monkeypatch) -> None:
    import labctl.masks.export as export

    dp = export_masks(trained["sclc"].path, trained["spec"], tmp_path / "dp.h5", encoding="double-phase")
    assert dp.method == "sclc-double-phase" and dp.gray.shape == (128, 128)
    from labctl.masks.optimise import PhaseOptimisation

    opt = export_masks(trained["sclc"].path, trained["spec"], tmp_path / "opt.h5", encoding="optimised", data=trained["data"],
                       optimisation=PhaseOptimisation(steps=20))
    assert opt.method == "sclc-optimised" and opt.extra["match_after"] > opt.extra["match_before"]
    monkeypatch.setattr(export, "AUTO_TWIN_CHECK_LOSS", 1.0)  # any loss on the twin check is acceptable
    result = CliRunner().invoke(main, ["export-masks", str(trained["sclc"].path), "--bench", str(trained["bench_file"]),
                                       "--out", str(tmp_path / "it.h5")])  # the default encoding
    assert result.exit_code == 0, result.output
    iterative = MaskFile.load(tmp_path / "it.h5")
    assert iterative.method == "sclc-iterative" and iterative.extra["iterations"] > 0
    check = iterative.extra["twin_check"]
    _, (checked, _) = export._training_images(trained["data"])  # the first ones fit the per-channel scale
    assert list(check) == ["iterative"] and check["iterative"]["images"] == len(checked) - min(FIT_IMAGES, len(checked) // 2)
    said = " ".join(result.output.split())  # rich wraps long lines
    assert f"digital {check['iterative']['digital']:.1%}, iterative {check['iterative']['optical']:.1%}; kept iterative" in said
    assert iterative.extra["region_error_after"] < iterative.extra["region_error_before"]
    for masks in (dp, opt, iterative):  # data-free: what each encoding is worth on the calibrated panel
        assert masks.extra["panel"] == {"fringing_sigma_px": pytest.approx(0.0, abs=0.26), "fill_factor": pytest.approx(1.0, abs=0.03)}
        assert 0 < masks.extra["ideal_region_error"] < 2 and masks.extra["panel_region_error"] > 0
    assert "warning" not in result.output  # an ideal test panel
    refused = CliRunner().invoke(main, ["export-masks", str(trained["sclc"].path), "--bench", str(trained["bench_file"]),
                                        "--out", str(tmp_path / "x.h5"), "--encoding", "kinoform"])
    assert refused.exit_code != 0 and "kinoform" in refused.output and not (tmp_path / "x.h5").exists()
    with pytest.raises(MaskFileError, match="exists"):
        export_masks(trained["sclc"].path, trained["spec"], tmp_path / "dp.h5")


def test_auto_export_optimises_when_the_twin_check_fails_and_keeps_the_better(trained, tmp_path: Path, monkeypatch) -> None:
    import labctl.masks.export as export
    from labctl.masks.optimise import PhaseOptimisation

    monkeypatch.setattr(export, "AUTO_TWIN_CHECK_LOSS", -1.0)  # no iterative export passes
    stages = []
    auto = export_masks(trained["sclc"].path, trained["spec"], tmp_path / "auto.h5", data=trained["data"],
                        optimisation=PhaseOptimisation(steps=10), on_stage=lambda *stage: stages.append(stage))
    assert stages[0] == ("iterative encoding", 0, 1) and ("twin check of the iterative encoding", 0, 1) in stages
    assert ("optimising mask 1 of 1", 10, 10) in stages and stages[-1] == ("twin check of the optimised encoding", 0, 1)
    check = auto.extra["twin_check"]
    assert set(check) == {"iterative", "optimised"} and check["iterative"]["digital"] == check["optimised"]["digital"]
    better = max(check, key=lambda name: (check[name]["optical"], name == "optimised"))
    assert auto.method == f"sclc-{better}" and auto.extra["encoding"] == "auto"
    kept = export_masks(trained["sclc"].path, trained["spec"], tmp_path / "kept.h5", encoding=better, data=trained["data"],
                        optimisation=PhaseOptimisation(steps=10))
    assert np.array_equal(kept.phase_rad, auto.phase_rad)  # the very mask that encoding makes
    # the optimisation's images and the check's are apart
    fit, (scored, targets) = export._training_images(trained["data"])
    train = len(trained["data"].train)
    assert len(fit) == min(export.OPTIMISE_IMAGES, train // 2)
    assert len(scored) == len(targets) == min(export.TWIN_CHECK_IMAGES, train - len(fit)) > 0
    assert np.array_equal(np.concatenate([fit, scored]), export.images_of(trained["data"].train, len(fit) + len(scored))[0])


@pytest.mark.parametrize("optimised_reads", [0.80, 0.90])
def test_auto_export_keeps_whichever_encoding_the_twin_check_reads_better(trained, tmp_path: Path, monkeypatch,
                                                                         optimised_reads: float) -> None:
    import labctl.masks.export as export
    from labctl.masks.optimise import PhaseOptimisation
    from labctl.masks.twin_check import TwinCheck

    scripted = iter([TwinCheck(500, 0.95, 0.85), TwinCheck(500, 0.95, optimised_reads)])  # iterative, then optimised
    monkeypatch.setattr(export, "twin_check", lambda *args: next(scripted))
    settings = {"data": trained["data"], "optimisation": PhaseOptimisation(steps=5)}
    auto = export_masks(trained["sclc"].path, trained["spec"], tmp_path / "auto.h5", **settings)
    assert auto.extra["twin_check"] == {"iterative": {"images": 500, "digital": 0.95, "optical": 0.85, "metric": "accuracy"},
                                        "optimised": {"images": 500, "digital": 0.95, "optical": optimised_reads,
                                                      "metric": "accuracy"}}
    kept = "optimised" if optimised_reads > 0.85 else "iterative"
    alone = export_masks(trained["sclc"].path, trained["spec"], tmp_path / "alone.h5", encoding=kept, **settings)
    assert auto.method == alone.method == f"sclc-{kept}" and np.array_equal(auto.gray, alone.gray)
    assert ("optimisation" in auto.extra) == (kept == "optimised")  # the kept export's own record, not the other's
    assert {k: v for k, v in auto.extra.items() if k not in ("twin_check", "encoding", "provenance")} == {
        k: v for k, v in alone.extra.items() if k not in ("encoding", "provenance")}
    # the operator is told when even the kept export loses more than the check allows
    scripted = iter([TwinCheck(500, 0.95, 0.85), TwinCheck(500, 0.95, optimised_reads)])
    result = CliRunner().invoke(main, ["export-masks", str(trained["sclc"].path), "--bench", str(trained["bench_file"]),
                                       "--out", str(tmp_path / "cli.h5")])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    loss = 0.95 - max(0.85, optimised_reads)
    assert f"iterative 85.0%, optimised {optimised_reads:.1%}; kept {kept}" in said and f"reads {100 * loss:.1f} points below" in said


def test_auto_export_on_too_few_training_images_stays_data_free_and_says_why(trained, tmp_path: Path, monkeypatch) -> None:
    import dataclasses

    import labctl.masks.export as export
    from labctl.masks.optimise import PhaseOptimisation

    data = dataclasses.replace(trained["data"], train=trained["data"].train.subset(torch.arange(100)))
    masks = export_masks(trained["sclc"].path, trained["spec"], tmp_path / "auto.h5", data=data)
    assert masks.method == "sclc-iterative"
    assert masks.extra["twin_check"] == {"skipped": "100 training images leave 50 for a twin check (at least 64)"}
    monkeypatch.setattr(export, "PANEL_ADDED_ERROR_WARNING", -1.0)  # the panel spoils the iterative field: optimised
    masks = export_masks(trained["sclc"].path, trained["spec"], tmp_path / "fringing.h5", data=data,
                         optimisation=PhaseOptimisation(steps=3))
    assert masks.method == "sclc-optimised" and "leave 50 for a twin check" in masks.extra["twin_check"]["skipped"]


def test_auto_export_without_its_training_data_stays_data_free_and_says_so(trained, tmp_path: Path, monkeypatch) -> None:
    import labctl.masks.export as export
    from labctl.data.errors import DataFileError

    def gone(spec, size=None):  # noqa: ANN001, ANN202 - load_dataset's signature
        raise DataFileError("/data/moved", "no such directory")

    monkeypatch.setattr(export, "load_dataset", gone)
    result = CliRunner().invoke(main, ["export-masks", str(trained["sclc"].path), "--bench", str(trained["bench_file"]),
                                       "--out", str(tmp_path / "auto.h5")])
    assert result.exit_code == 0, result.output
    masks = MaskFile.load(tmp_path / "auto.h5")
    assert masks.method == "sclc-iterative" and "no such directory" in masks.extra["twin_check"]["skipped"]
    said = " ".join(result.output.split())
    assert "twin check of the iterative export was skipped" in said and "/data/moved" in said


def test_export_warns_when_the_calibrated_panel_spoils_the_encoding(trained, tmp_path: Path, monkeypatch) -> None:
    import labctl.masks.export as export

    monkeypatch.setattr(export, "PANEL_ADDED_ERROR_WARNING", -1.0)  # the test panel is ideal: any error is "too much"
    result = CliRunner().invoke(main, ["export-masks", str(trained["sclc"].path), "--bench", str(trained["bench_file"]),
                                       "--out", str(tmp_path / "it.h5"), "--encoding", "iterative"])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "fringing" in result.output and "optics-aware" in result.output
    assert (tmp_path / "it.h5").is_file()  # a warning, not a refusal: the operator may still run it
    # the default (auto) encoding optimises through the calibrated panel instead, and says how well it matches
    result = CliRunner().invoke(main, ["export-masks", str(trained["sclc"].path), "--bench", str(trained["bench_file"]),
                                       "--out", str(tmp_path / "auto.h5")])
    assert result.exit_code == 0, result.output
    auto = MaskFile.load(tmp_path / "auto.h5")
    assert auto.method == "sclc-optimised" and auto.extra["encoding"] == "auto"
    assert list(auto.extra["twin_check"]) == ["optimised"]  # optimised unchecked, then checked for the record
    assert auto.extra["iterative_panel_region_error"] == pytest.approx(MaskFile.load(tmp_path / "it.h5").extra["panel_region_error"])
    assert "readout match through the calibrated panel" in result.output and "warning" not in result.output
    monkeypatch.setattr(export, "PANEL_FRINGING_MISMATCH_PX", -1.0)  # any trained panel now differs from the bench's
    result = CliRunner().invoke(main, ["export-masks", str(trained["optics"].path), "--bench", str(trained["bench_file"]),
                                       "--out", str(tmp_path / "oa.h5")])
    assert result.exit_code == 0, result.output
    assert "trained through a panel" in result.output and (tmp_path / "oa.h5").is_file()
    assert "dark pixels leak" not in result.output
    monkeypatch.setattr(export, "INPUT_LEAK_MISMATCH", -1.0)
    result = CliRunner().invoke(main, ["export-masks", str(trained["optics"].path), "--bench", str(trained["bench_file"]),
                                       "--out", str(tmp_path / "oa2.h5")])
    assert result.exit_code == 0, result.output
    assert "dark pixels leak" in result.output and (tmp_path / "oa2.h5").is_file()


def test_finetune_measures_improves_and_resumes_after_a_crash(trained, tmp_path: Path, monkeypatch) -> None:
    from labctl.insitu import session as insitu
    from labctl.insitu.backend_ft import BackendFineTuneConfig
    from labctl.insitu.pat import PATConfig
    from labctl.insitu.twin_fit import TwinFitConfig

    masks = tmp_path / "masks.h5"
    export_masks(trained["optics"].path, trained["spec"], masks)
    options = insitu.FineTuneOptions(fraction=0.05, heldout=60, backend=BackendFineTuneConfig(epochs=10),
                                     twin=TwinFitConfig(steps=10), pat=PATConfig(epochs=1, batch_size=24))
    out = tmp_path / "ft"
    real_refine = insitu.refine_twin

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(insitu, "refine_twin", crash)
    with pytest.raises(KeyboardInterrupt):
        insitu.FineTuneSession(trained["spec"], masks, None, trained["data"], out, options=options).run()
    state = torch.load(out / "state.pt", weights_only=True)  # the state file holds plain data only
    assert state["stage"] == "twin" and "optical_backend_ft" in state["results"]
    frames_before_crash = state["bench_frames"]
    with pytest.raises(insitu.FineTuneError, match="--resume"):
        insitu.FineTuneSession(trained["spec"], masks, None, trained["data"], out, options=options).run()
    monkeypatch.setattr(insitu, "refine_twin", real_refine)
    logs = []
    result = insitu.FineTuneSession(trained["spec"], masks, None, trained["data"], out, options=options, log=logs.append).run(resume=True)
    subset = int(np.ceil(0.05 * len(trained["data"].train)))
    # after the crash: the twin stage re-used cached frames; one PAT epoch and the final re-fit captured a pass each
    assert result.bench_frames == frames_before_crash + 2 * subset
    assert any("resuming at stage 'twin'" in m for m in logs)
    # the final re-fit learned from every training frame of the run, the back-end pass's from before the crash too:
    # three passes, each over a fresh subset
    assert any(f"re-fitted on {3 * subset} frames ({3 * subset} inputs)" in m for m in logs), logs
    for key in ("digital", "optical_before", "optical_backend_ft", "optical_pat"):
        assert 0.3 < getattr(result, key) <= 1.0
    assert (out / "finetune.png").stat().st_size > 1000 and MaskFile.load(result.masks).model["sha256"]
    from labctl.insitu.record import FineTuneRecord

    record = FineTuneRecord.read(out / "finetune.h5")
    assert [h["stage"] for h in record["history"]][:2] == ["before", "backend"]
    assert record["results"]["bench_frames"] == result.bench_frames


def test_export_reads_the_saved_bench_description_and_opens_no_device(trained, tmp_path: Path, monkeypatch) -> None:
    from drivers.description import BenchDescription, description_path
    from drivers.phase_table import PhaseTable

    saved = description_path(trained["bench_file"])
    assert saved.is_file(), "the fixture's layout opened the bench once, which saves its description beside the file"

    def no_hardware(self):
        raise AssertionError(f"{self.source} was opened")

    monkeypatch.setattr(BenchSpec, "open", no_hardware)
    masks = export_masks(trained["sclc"].path, trained["spec"], tmp_path / "dp.h5", encoding="double-phase")
    described = BenchDescription.from_dict(masks.extra["bench_description"])
    assert described == BenchDescription.load(saved) and described.devices["camera"].identity.driver == "mock"
    masks.check_bench(described, PhaseTable.linear(described.devices["fourier_slm"].bit_depth))  # linear: no record
