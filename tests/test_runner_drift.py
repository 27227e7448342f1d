"""The drift monitor: reference inputs re-shown during a run on a bench whose laser power (or phase
response) drifts over the simulated clock; checks recorded, the gain corrected, a change no gain can
undo stopping the run, and the baseline kept across a resume."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from drivers.bench import BenchSpec
from drivers.camera import FrameBatch
from labctl.cli import main
from labctl.data import load_dataset
from labctl.masks.export import export_masks
from labctl.models.bench_layout import layout_for_bench
from labctl.records.drift_history import CHECKS_TABLE, DRIFT_EVENT, SUSPECT_EVENT, UNCORRECTABLE_EVENT
from labctl.records.report import build_report
from labctl.records.run_record import Column, RunRecord, RunRecordError
from labctl.runner.drift import BASELINE_ARRAY, DriftMonitor, open_monitor
from labctl.runner.drift_fit import GAIN_SIGMAS, Baseline, channel_sigmas, corrected_scale, fit_response, light_gain
from labctl.runner.drift_settings import DriftSettings
from labctl.optics.channel_scale import ChannelScale
from labctl.runner.session import RunOptions, run_masks
from labctl.training.loop import TrainSettings
from labctl.training.train import train_student
from mock_hw.realism.drift import Drift
from tests.conftest import bench_toml

SIZE = 16
#: the lab-realism light path with nothing drifting (the same path as the drifting benches)
STEADY = '\n[input_slm.realism]\nmodulator = "ideal"\n'
#: the laser's power settles by 42-60 % (its sign drawn from the seed: it falls) with a 1 s time
#: constant: 8-12 % over the ~0.3 s of simulated time a 160-input run takes
POWER_DRIFT = "\n[input_slm.realism]\npower_drift = 0.6\npower_drift_time_s = 1.0\n"
#: the LC's retardance falls by 35-50 % (1 s): the masks' phase shrinks, a change of shape
PHASE_DRIFT = STEADY + "\n[fourier_slm.realism]\nphase_drift = 0.5\nphase_drift_time_s = 1.0\n"
#: a noisy bench: camera noise, a DMD input (gray by PWM under a ~1 ms exposure: every frame's
#: gray levels mix differently) and the SLM's flicker; a power drift whose shape a test sets
NOISY_REALISM = ('\n[input_slm.realism]\nmodulator = "dmd"\npower_drift = 0.01\n'
                 '\n[fourier_slm.realism]\nflicker_rms_rad = 0.03\n')
#: checks before every batch of 4, default limits (the DMD's frame-to-frame pattern can leave up to 3 %
#: beyond the pixel noise on one capture of this small bench: suspects, cleared by their re-capture)
NOISY_OPTIONS = RunOptions(batch_size=4, limit=120, drift=DriftSettings(every_batches=1))
N = 160
OPTIONS = RunOptions(batch_size=8, limit=N, drift=DriftSettings(every_batches=2))
UNMONITORED = RunOptions(batch_size=8, limit=N, drift=DriftSettings(every_batches=0))


def _spec(realism: str) -> BenchSpec:
    return BenchSpec.from_toml(bench_toml(ideal=True, noise=False) + realism)


def _noisy_spec() -> BenchSpec:
    return BenchSpec.from_toml(bench_toml(ideal=True, noise=True) + NOISY_REALISM)


def _power_step(monkeypatch, step: float, at_s: float) -> None:
    """The laser's power steps by ``step`` at ``at_s`` on the bench clock (instead of settling)."""
    monkeypatch.setattr(Drift, "at", lambda self, t: np.where(np.asarray(t, dtype=np.float64) >= at_s, step, 0.0))


@pytest.fixture
def one_thread():
    """One torch thread: the DMD's bit planes are many small steps (15× slower on two busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """An optics-aware student (3 epochs on digits at 16 px, 4 channels) and its masks."""
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("drift")
    spec = _spec(STEADY)
    data = load_dataset("digits", size=SIZE)
    layout = layout_for_bench(spec, SIZE, 4)
    student = train_student(data, None, TrainSettings(epochs=3, batch_size=64, lr=1e-2, train_limit=600), kind="optics_aware",
                            out_dir=root / "student", layout=layout)
    masks = root / "masks.h5"
    export_masks(student.path, spec, masks)
    steady = root / "steady.h5"
    run_masks(spec, masks, data, steady, options=OPTIONS)
    return {"root": root, "data": data, "masks": masks, "steady": steady}


def _logits(path: Path) -> np.ndarray:
    with RunRecord.open(path) as rec:
        return rec.column("logits")


def _kinds(path: Path) -> list[str]:
    with RunRecord.open(path) as rec:
        return [e["kind"] for e in rec.events()]


# -- the fit and the correction, on synthetic readouts ------------------------------------------------


def test_a_gain_change_is_fitted_and_undone_and_a_shape_change_is_not_a_gain() -> None:
    """The light above the dark level scales: gain, the offset it implies, and the scale that undoes it."""
    rng = np.random.default_rng(0)
    dark = np.array([5.0, 0.0, 20.0])
    light = torch.from_numpy(rng.uniform(10, 100, (6, 3, 8, 8)))
    pedestal = torch.from_numpy(dark)[None, :, None, None]
    baseline = Baseline((light + pedestal).float(), np.zeros(3), dark, np.zeros(3), 0.0)
    moved = light * torch.tensor([0.8, 1.0, 1.3], dtype=torch.float64)[None, :, None, None] + pedestal
    fit = fit_response(baseline, moved)
    assert np.allclose(fit.gain, [0.8, 1.0, 1.3]) and np.allclose(fit.offset_dn, dark * (1 - fit.gain))
    assert np.allclose(fit.slope, fit.gain, atol=1e-4) and fit.residual.max() < 1e-6
    assert np.isclose(fit.common_gain, 31 / 30) and fit.gain_se.max() < 1e-6  # every reference moved alike
    scale = ChannelScale(np.array([0.01, 0.02, 0.03]), np.array([0.1, -0.1, 0.0]))
    assert torch.allclose(corrected_scale(scale, fit).apply(moved), scale.apply(light + pedestal), atol=1e-5)
    shifted = torch.roll(light, 1, dims=-1)  # the pattern moved by a pixel: no gain maps it back
    assert fit_response(Baseline(light.float(), np.zeros(3), np.zeros(3), np.zeros(3), 0.0), shifted).excess.min() > 0.1


def test_capture_noise_neither_biases_the_gain_nor_counts_as_a_change_of_shape() -> None:
    """A noisy camera: without the noise correction the slope would read ~0.8 here, and the residual
    (~ the noise, 25 % of the RMS readout) would look like a change of shape."""
    rng = np.random.default_rng(1)
    truth = torch.from_numpy(rng.uniform(0, 40, (8, 2, 16, 16)))
    noisy = lambda gain: truth * gain + torch.from_numpy(rng.normal(0, 6, truth.shape))  # noqa: E731
    baseline = Baseline.of(noisy(1.0), noisy(1.0))
    assert np.allclose(baseline.noise_dn, 6, rtol=0.05) and baseline.gain_se.max() < 0.02
    fit = fit_response(baseline, noisy(0.9))
    assert np.allclose(fit.gain, 0.9, atol=0.01) and np.allclose(fit.slope, 0.9, atol=0.01)
    assert fit.residual.min() > 0.2 and fit.excess.max() < 0.02


def test_the_gain_error_is_the_jackknife_over_references_and_frame_noise_is_common_to_channels() -> None:
    """Frame-wise noise (a DMD's PWM phase, the SLM's flicker) moves every channel of a frame alike:
    averaging channels does not shrink it. Pixel noise is independent: the mean over C channels has
    a √C smaller error. The jackknife over the references sees which: its standard error of a change
    between two captures matches the scatter of 400 such changes within a third, either way."""
    rng = np.random.default_rng(2)
    light = rng.uniform(20, 200, (8, 16, 6, 6))

    def capture(frame_rms: float, pixel_rms: float) -> np.ndarray:
        frame = 1 + frame_rms * rng.standard_normal((8, 1, 1, 1))
        return light * frame + pixel_rms * rng.standard_normal(light.shape)

    for frame_rms, pixel_rms, common_over_channel in ((0.02, 0.0, (0.7, 1.0)), (0.0, 8.0, (0.15, 0.4))):
        pairs = [light_gain(capture(frame_rms, pixel_rms), capture(frame_rms, pixel_rms), np.zeros(16)) for _ in range(400)]
        spread = np.std([p.common for p in pairs])
        se = np.sqrt(np.mean([p.common_se**2 for p in pairs]))
        channel_se = np.sqrt(np.mean([p.se**2 for p in pairs]))
        assert 0.67 < se / spread < 1.5, (frame_rms, pixel_rms, se, spread)
        assert common_over_channel[0] < se / channel_se < common_over_channel[1], (se, channel_se)
    assert channel_sigmas(1) == pytest.approx(GAIN_SIGMAS) and 4.5 < channel_sigmas(16) < 4.7


def test_the_start_captures_are_staggered_and_their_spread_is_the_capture_noise(tmp_path: Path) -> None:
    """A frame pattern that repeats with the capture spacing (a DMD's PWM beating with the frame
    timing) is invisible to two captures K frames apart; the staggered start (starts K + 1 and K + 2
    frames apart) sees it in its spread, so a later capture on another phase of the beat is no change of shape. Two
    captures give the pair's noise as before; one is refused; the record keeps how many there were."""
    rng = np.random.default_rng(4)
    light = rng.uniform(10, 100, (4, 3, 8, 8))
    pattern = 1 + 0.05 * rng.standard_normal(light.shape)  # the beat's other phase: 5 % per pixel
    shown: list[int] = []  # inputs shown per capture call, in order

    def capture(amplitudes: np.ndarray) -> FrameBatch:
        shown.append(len(amplitudes))
        frames_before = sum(shown[:-1])
        phase_one = frames_before % 4 == 0  # a beat of 4 frames: the references' own spacing
        return FrameBatch(light if phase_one else light * pattern, np.arange(len(amplitudes)), np.zeros(len(amplitudes)), 1e-3)

    processor = SimpleNamespace(scale=ChannelScale(np.ones(3), np.zeros(3)), readout=torch.from_numpy,
                                layout=SimpleNamespace(channels=3))
    with RunRecord.create(tmp_path / "run.h5", 4, [Column("x"), DriftMonitor.column], {"task": "test"}) as rec:
        monitor = open_monitor(rec, DriftSettings(every_batches=1, inputs=4), np.zeros((8, 2, 2)), capture, processor, False)
        recorded = rec.attr("drift")
    assert shown == [4, 1, 4, 2, 4] and recorded["captures"] == 3
    baseline = monitor._baseline
    assert baseline.captures == 3 and baseline.noise_dn.min() > 1.0  # the pattern's spread, not 0
    assert fit_response(baseline, torch.from_numpy(light * pattern)).excess.max() < 0.01
    pair = Baseline.of(torch.from_numpy(light), torch.from_numpy(light))  # the pair on one phase: no noise seen
    assert pair.captures == 2 and pair.noise_dn.max() == 0
    assert fit_response(pair, torch.from_numpy(light * pattern)).excess.min() > 0.03
    a, b = (torch.from_numpy(light + rng.normal(0, 2, light.shape)) for _ in range(2))
    d = (a - b).transpose(0, 1).reshape(3, -1).double().numpy()
    expected = np.sqrt(((d - d.mean(axis=1, keepdims=True)) ** 2).mean(axis=1) / 2)  # the pair's formula
    assert np.allclose(Baseline.of(a, b).noise_dn, expected)
    with pytest.raises(ValueError, match="two or more captures"):
        Baseline.of(a)
    for damaged in ({"captures": 1}, {"captures": "3"}, {"noise_dn": [1.0]}):  # a resume reads what was recorded
        with RunRecord.open(tmp_path / "run.h5", "r+") as rec:
            rec.set_attr("drift", recorded | damaged)
            with pytest.raises(RunRecordError, match=f"recorded drift {next(iter(damaged))}"):
                open_monitor(rec, DriftSettings(every_batches=1, inputs=4), np.zeros((8, 2, 2)), capture, processor, True)


def _monitor(captures: list[np.ndarray], baseline: Baseline) -> DriftMonitor:
    """A monitor whose references read ``captures`` in turn ((K, C, n, n) readouts; the readout is the identity)."""
    queue = iter(captures)
    capture = lambda: FrameBatch(next(queue), np.arange(8), np.zeros(8), 1e-3)  # noqa: E731
    processor = SimpleNamespace(scale=ChannelScale(np.ones(3), np.zeros(3)), readout=torch.from_numpy)
    return DriftMonitor(DriftSettings(every_batches=1), capture, processor, baseline)  # type: ignore[arg-type]


def test_a_shape_change_stops_only_when_an_immediate_re_capture_confirms_it(tmp_path: Path) -> None:
    """A frame pattern on one capture (channel 1 of one capture distorted) is suspect, re-captured,
    cleared and logged; a change both captures show stops the run, and says so with both numbers.
    A table begun before the re-capture columns (a resumed record) gets rows without them."""
    rng = np.random.default_rng(3)
    light = rng.uniform(10, 100, (8, 3, 8, 8))
    baseline = Baseline(torch.from_numpy(light).float(), np.zeros(3), np.zeros(3), np.zeros(3), 0.0)
    pattern = light.copy()
    pattern[:, 1] *= rng.uniform(0.9, 1.1, light[:, 1].shape)  # ~6 % of the readout: a one-capture pattern
    monitor = _monitor([pattern, light, pattern, pattern], baseline)
    cleared = monitor.check(8, 8)
    assert cleared.suspect and not cleared.uncorrectable and cleared.fit.excess[1] > 0.04
    assert cleared.recheck_excess is not None and cleared.recheck_excess.max() < 1e-6
    assert [kind for kind, _ in cleared.events()] == [SUSPECT_EVENT]
    assert "re-capture of the references left 0.00 %" in cleared.events()[0][1]
    confirmed = monitor.check(16, 16)
    assert confirmed.suspect and confirmed.uncorrectable.startswith("the response changed shape on 1 channel(s) [1]")
    assert "on an immediate re-capture" in confirmed.uncorrectable
    assert [kind for kind, _ in confirmed.events()] == [UNCORRECTABLE_EVENT]
    steady = _monitor([light], baseline).check(8, 8)
    assert not steady.suspect and steady.row()["recheck_excess"].tolist() == [0, 0, 0] and steady.events() == []
    path = tmp_path / "old.h5"
    with RunRecord.create(path, 4, [Column("x")], {"task": "test"}) as rec:
        old_row = {k: v for k, v in steady.row().items() if k not in ("suspect", "recheck_excess")}
        rec.append_row(CHECKS_TABLE, old_row)
        DriftMonitor.record(rec, cleared)
        table = rec.table(CHECKS_TABLE)
        assert table.size == 2 and "suspect" not in table.dtype.names
        assert [e["kind"] for e in rec.events()] == [SUSPECT_EVENT]


def test_record_tables_and_arrays_round_trip_and_refuse_damage(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with RunRecord.create(path, 4, [Column("x")], {"task": "test"}) as rec:
        rec.append_row("checks", {"number": 1, "gain": np.array([1.0, 0.9]), "corrected": True})
        rec.append_row("checks", {"number": 2, "gain": np.array([0.8, 0.7]), "corrected": False})
        with pytest.raises(RunRecordError, match="must give"):
            rec.append_row("checks", {"number": 3})
        rec.put_array("base", np.arange(12, dtype=np.float32).reshape(3, 4))
        with pytest.raises(RunRecordError, match="written once"):
            rec.put_array("base", np.zeros(2))
    with RunRecord.open(path) as rec:
        table = rec.table("checks")
        assert table["number"].tolist() == [1, 2] and np.allclose(table["gain"][1], [0.8, 0.7])
        assert rec.array("base")[2, 3] == 11 and rec.table("other") is None and rec.array("other") is None
    with h5py.File(path, "r+") as h5:
        rows = h5["tables/checks"][...]
        rows["gain"][1, 0] = 0.5
        h5["tables/checks"][...] = rows
        h5["arrays/base"][0, 0] = 7
    with RunRecord.open(path) as rec:
        with pytest.raises(RunRecordError, match="row 1 of table 'checks'"):
            rec.table("checks")
        with pytest.raises(RunRecordError, match="array 'base'"):
            rec.array("base")


# -- on a drifting bench ------------------------------------------------------------------------------


def test_steady_bench_records_checks_and_no_drift(trained) -> None:
    with RunRecord.open(trained["steady"]) as rec:
        checks = rec.table(CHECKS_TABLE)
        assert rec.done.all() and not any(k.startswith(DRIFT_EVENT) for k in _kinds(trained["steady"]))
        assert checks.size == N // 8 // 2  # before batches 2, 4, ... 18, and one after the last
        assert np.allclose(checks["gain"], 1, atol=1e-3) and not checks["corrected"].any()
        assert (rec.column("drift_epoch") == 0).all()


def test_power_drift_is_logged_corrected_and_the_readout_kept_near_the_steady_one(trained, tmp_path: Path) -> None:
    spec = _spec(POWER_DRIFT)
    monitored, plain = tmp_path / "monitored.h5", tmp_path / "plain.h5"
    run_masks(spec, trained["masks"], trained["data"], monitored, options=OPTIONS)
    run_masks(spec, trained["masks"], trained["data"], plain, options=UNMONITORED)
    steady = _logits(trained["steady"])
    error_monitored = np.sqrt(np.mean((_logits(monitored) - steady) ** 2))
    error_plain = np.sqrt(np.mean((_logits(plain) - steady) ** 2))
    assert error_monitored < 0.6 * error_plain, (error_monitored, error_plain)  # measured: 0.19 against 0.41
    assert DRIFT_EVENT in _kinds(monitored) and UNCORRECTABLE_EVENT not in _kinds(monitored)
    with RunRecord.open(monitored) as rec:
        checks = rec.table(CHECKS_TABLE)
        epochs = rec.column("drift_epoch")
        assert checks["corrected"].sum() >= 3 and checks["gain"][-1].max() < 0.95  # the laser lost > 5 %
        for check in checks[checks["corrected"]]:  # each correction is in force from its first input on
            assert epochs[check["first_index"]] == check["epoch"]
        assert np.all(np.diff(epochs) >= 0) and epochs[0] == 0
    with RunRecord.open(plain) as rec:
        assert rec.table(CHECKS_TABLE) is None and "drift_epoch" not in {c.name for c in rec.columns}


def test_a_steady_noisy_bench_raises_no_drift_event_and_resolves_3_percent(trained, tmp_path: Path, monkeypatch, one_thread) -> None:
    """30 checks on a bench whose frames vary (DMD, flicker, shot and read noise) and whose laser
    holds: no gain event and, at the default residual limit, no stop. The first monitor's threshold
    here was 4 × one capture pair's gain spread, 3.1 % (a 3 % power change went unflagged); the
    common-mode threshold is now 1.6–1.8 % once pooled over a few checks (2.2 % at the first, from
    the start captures alone, with this fixture's student). One capture's fit can leave up to 3 %
    beyond the pixel noise on this bench (the DMD's PWM pattern, by where the start captures fall in
    its beat with the frame timing and by the masks: benchmarks/drift_shape.py): such checks are
    suspect, re-captured and cleared, each with its event (the rule itself:
    test_a_shape_change_stops_only_when_an_immediate_re_capture_confirms_it). With a start *pair*
    that fell on one phase of the beat (a student trained on other numerics), this run stopped at
    its first check (5.15 %, re-captured 6.11 %): the start captures are now staggered (drift.START_SPACERS)."""
    _power_step(monkeypatch, 0.0, 0.0)
    out = tmp_path / "steady.h5"
    summary, _ = run_masks(_noisy_spec(), trained["masks"], trained["data"], out, options=NOISY_OPTIONS)
    assert not summary.interrupted and not summary.stop_reason
    kinds = _kinds(out)
    assert DRIFT_EVENT not in kinds and UNCORRECTABLE_EVENT not in kinds
    with RunRecord.open(out) as rec:
        checks = rec.table(CHECKS_TABLE)
        assert rec.done.all() and checks.size == 120 // 4 and not checks["corrected"].any()
        assert (rec.column("drift_epoch") == 0).all()
    assert checks["common_tolerance"].max() < 0.025 and checks["channel_tolerance"].max() < 0.045
    assert checks["common_tolerance"][3:].max() < 0.02 and checks["channel_tolerance"][3:].max() < 0.037  # pooled
    assert np.abs(checks["common_gain"] - 1).max() < 0.5 * checks["common_tolerance"].min()  # margin to spare
    limit = NOISY_OPTIONS.drift.residual_limit
    suspect = checks["suspect"]
    assert np.array_equal(suspect, (checks["excess"] > limit).any(axis=1)) and kinds.count(SUSPECT_EVENT) == suspect.sum()
    assert not ((checks["excess"] > limit) & (checks["recheck_excess"] > limit)).any()


def test_a_3_percent_power_step_on_a_noisy_bench_is_flagged_and_corrected(trained, tmp_path: Path, monkeypatch, one_thread) -> None:
    """The laser loses 3 % half-way through: the first check after it flags and corrects it, the
    check after that re-fits once more (a step within a check's frames is only partly in its gain),
    then the correction holds; nothing is flagged before the step."""
    step_s = 0.9
    _power_step(monkeypatch, -0.03, step_s)
    out = tmp_path / "step.h5"
    run_masks(_noisy_spec(), trained["masks"], trained["data"], out, options=NOISY_OPTIONS)
    with RunRecord.open(out) as rec:
        checks = rec.table(CHECKS_TABLE)
        events = [e for e in rec.events() if e["kind"] in (DRIFT_EVENT, UNCORRECTABLE_EVENT)]
        epochs = rec.column("drift_epoch")
    # a check's 8 frames take ~25 ms: one may straddle the step
    before, after = checks[checks["camera_time_s"] < step_s - 0.02], checks[checks["camera_time_s"] > step_s + 0.02]
    assert before.size >= 10 and after.size >= 10 and not before["corrected"].any()
    corrections = checks[checks["corrected"]]
    first, last = corrections[0], corrections[-1]
    assert not first["follow_up"] and before["number"][-1] < first["number"] <= after["number"][0], "flagged at the step"
    assert {e["kind"] for e in events} == {DRIFT_EVENT} and min(e["first_index"] for e in events) == first["first_index"]
    assert "common-mode gain moved by -" in events[0]["message"]
    assert last["number"] <= first["number"] + 1 and not after[after["number"] > last["number"]]["corrected"].any()  # settled
    assert abs(last["common_gain"] - 0.97) < 0.004  # the light above the dark level, not the readout with its offset
    settled = after[after["number"] > last["number"]]
    assert settled.size >= 8 and np.abs(settled["common_gain"] / last["common_gain"] - 1).max() < settled["common_tolerance"].min()
    assert epochs[last["first_index"]:].min() == last["epoch"] and epochs[: before["first_index"][-1]].max() == 0


def test_a_record_of_the_first_monitor_is_refused_for_checks_and_resumes_without(trained, tmp_path: Path) -> None:
    out = tmp_path / "run.h5"
    stop = threading.Event()
    run_masks(_spec(STEADY), trained["masks"], trained["data"], out, options=OPTIONS,
              on_progress=lambda done, total: stop.set() if done >= 40 else None, stop=stop)
    with RunRecord.open(out, "r+") as rec:  # what the first monitor wrote: no format, no dark level or errors
        saved = rec.attr("drift")
        rec.set_attr("drift", {k: v for k, v in saved.items() if k not in ("format", "dark_dn", "gain_se", "common_se")}
                     | {"gain_noise": 0.001})
    with pytest.raises(RunRecordError, match="earlier drift monitor .*--drift-every 0"):
        run_masks(_spec(STEADY), trained["masks"], trained["data"], out, options=OPTIONS, resume=True)
    summary, _ = run_masks(_spec(STEADY), trained["masks"], trained["data"], out, resume=True,
                           options=RunOptions(batch_size=8, limit=N, drift=DriftSettings(every_batches=0)))
    assert not summary.interrupted
    with RunRecord.open(out) as rec:
        assert rec.done.all()


def test_resume_reuses_the_recorded_baseline_and_checks_first(trained, tmp_path: Path) -> None:
    spec, out = _spec(POWER_DRIFT), tmp_path / "run.h5"
    stop = threading.Event()
    first, _ = run_masks(spec, trained["masks"], trained["data"], out, options=OPTIONS,
                         on_progress=lambda done, total: stop.set() if done >= 40 else None, stop=stop)
    assert first.interrupted
    with RunRecord.open(out) as rec:
        baseline, settings = rec.array(BASELINE_ARRAY), rec.attr("drift")
        before = rec.table(CHECKS_TABLE)
        resume_at = int(np.flatnonzero(~rec.done)[0])
    second, _ = run_masks(spec, trained["masks"], trained["data"], out, options=OPTIONS, resume=True)
    assert not second.interrupted
    with RunRecord.open(out) as rec:
        assert np.array_equal(rec.array(BASELINE_ARRAY), baseline) and rec.attr("drift") == settings
        after = rec.table(CHECKS_TABLE)
        assert rec.done.all()
        epochs = rec.column("drift_epoch")
    resumed = after[before.size:]
    assert resumed["number"].tolist() == list(range(before.size + 1, after.size + 1))
    assert resumed["first_index"][0] == resume_at  # checked before the resumed session's first input
    # the reopened simulated bench restarts its clock: the laser is back at its power of t = 0, above
    # the baseline's (taken after the exposure and scale fit); the first check corrects it, as a new epoch
    assert resumed["gain"][0].min() > 1.05 and resumed["corrected"][0]
    assert resumed["epoch"][0] == before["epoch"].max() + 1 == epochs[resume_at]


def test_a_change_no_gain_can_undo_stops_the_run_and_says_to_recalibrate(trained, tmp_path: Path) -> None:
    out = tmp_path / "run.h5"
    summary, _ = run_masks(_spec(PHASE_DRIFT), trained["masks"], trained["data"], out, options=OPTIONS)
    assert summary.interrupted and summary.stop_reason.startswith("drift: the response changed shape")
    with RunRecord.open(out) as rec:
        events = [e for e in rec.events() if e["kind"] == UNCORRECTABLE_EVENT]
        assert len(events) == 1 and "re-calibrate registration/phase" in events[0]["message"]
        assert not rec.done[events[0]["first_index"]:].any(), "nothing is run after the flagged check"
        last = rec.table(CHECKS_TABLE)[-1]
        assert last["uncorrectable"] and last["suspect"], "confirmed by an immediate re-capture"
        limit = OPTIONS.drift.residual_limit
        assert ((last["excess"] > limit) & (last["recheck_excess"] > limit)).any()


def test_cli_sets_the_interval_and_the_report_plots_the_checks(trained, tmp_path: Path) -> None:
    bench = tmp_path / "bench.toml"
    bench.write_text(bench_toml(ideal=True, noise=False) + POWER_DRIFT)
    runner = CliRunner()
    base = ["run", "--bench", str(bench), "--masks", str(trained["masks"]), "--data", "digits", "--limit", "64", "--batch-size", "8", "--resize"]
    result = runner.invoke(main, [*base, "--out", str(tmp_path / "off.h5"), "--drift-every", "0"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, [*base, "--out", str(tmp_path / "on.h5"), "--drift-every", "1", "--drift-inputs", "4"])
    assert result.exit_code == 0, result.output
    assert build_report(tmp_path / "off.h5").drift is None
    result = runner.invoke(main, ["report", str(tmp_path / "on.h5")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["drift_checks"] == 8 and summary["drift_corrections"] >= 1 and summary["faults"] == 0
    assert (tmp_path / "on.drift.png").stat().st_size > 1000
    with RunRecord.open(tmp_path / "on.h5") as rec:
        assert rec.attr("drift")["settings"]["inputs"] == 4 and rec.array(BASELINE_ARRAY).shape[0] == 4
