"""Run calibrations on an open bench and save their records, raw data and plots.

``calibrate_all(spec, out_dir)`` opens the bench, runs every calibration, and writes
``out_dir/bench.toml``: the same bench with a [calibration] table naming the new records, so later
commands (``labctl run --bench out_dir/bench.toml``) use them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from calibration.acquisition import Acquirer, RetryPolicy
from calibration.active import apply_amplitude_table, apply_phase_table
from calibration.camera_response import CameraSweepSettings, measure_camera_response
from calibration.errors import AmbiguousMeasurement, CalibrationError, EmptyFrames, SaturatedFrames
from calibration.input_response import InputResponseSettings, measure_input_response
from calibration.plots import plot_record
from calibration.raw_log import RawLog, kept_on_failure, no_progress
from calibration.records import KINDS, CalibrationRecord
from calibration.registration import RegistrationSettings, measure_registration
from calibration.slm_fringing import FringingMeasurement, measure_fringing
from calibration.slm_interferometric import InterferometricSettings, measure_phase_response_interferometric
from calibration.session import open_session
from calibration.slm_phase import PhaseSweepSettings, measure_phase_response
from drivers.bench import Bench, BenchSpec
from drivers.description import BenchDescription

Progress = Callable[[str, float], None]


def _save(record: CalibrationRecord, out_dir: Path, bench: Bench, log: RawLog) -> Path:
    """Write the record (with the description of the bench it was measured on and the acquisition
    faults recovered from, by kind; each is in the raw log) and its plot."""
    record.params["bench"] = BenchDescription.of(bench).to_dict()
    record.params["acquisition_faults"] = log.fault_counts()
    path = record.save(out_dir)
    plot_record(record, path.with_suffix(".png"))
    return path


SLM_METHODS = {
    "diffraction": "binary-grating diffraction (first orders, complementary gratings), monotone fit",
    "interferometric": "split-screen interferometry (input cosine grating, first orders' fringes), monotone fit",
}


def calibrate_slm(bench: Bench, out_dir: str | Path, progress: Progress | None = None,
                  settings: PhaseSweepSettings | InterferometricSettings | None = None,
                  method: str = "diffraction", retry: RetryPolicy | None = None) -> Path:
    """Phase calibration of the Fourier SLM by ``method`` (see SLM_METHODS); makes the new table active
    on ``bench``. ``settings`` must suit the method (None: its defaults); ``retry``: how acquisition
    faults are retried (None: the default policy)."""
    if method not in SLM_METHODS:
        raise CalibrationError(f"unknown SLM calibration method {method!r}; expected one of {tuple(SLM_METHODS)}")
    out = Path(out_dir)
    slm = bench.fourier_slm
    report = progress or no_progress
    with kept_on_failure(RawLog(out, "slm_phase")) as log:
        acq = Acquirer(bench, policy=retry, on_fault=log.fault)
        def phase_progress(message: str, fraction: float) -> None:  # the phase table: the first 90 %
            report(message, 0.9 * fraction)

        def fringing_progress(message: str, fraction: float) -> None:
            report(message, 0.9 + 0.1 * fraction)

        if method == "interferometric":
            cal = measure_phase_response_interferometric(acq, log, settings or InterferometricSettings(), phase_progress)
        else:
            cal = measure_phase_response(acq, log, settings or PhaseSweepSettings(), phase_progress)
        fringing = _fringing(acq, log, cal.table, fringing_progress)
    record = CalibrationRecord(
        kind="slm_phase", device=slm.info, wavelength_m=bench.spec.optics.wavelength_m,
        method=f"{SLM_METHODS[method]}; fringing width and fill factor from the zero order of 0/pi binary gratings",
        params={"method": method, **cal.params, **fringing.params}, residuals={**cal.residuals, **fringing.residuals},
        arrays=cal.arrays,
    )
    path = _save(record, out, bench, log)
    apply_phase_table(bench, record)
    return path


def _fringing(acq: Acquirer, log: RawLog, table, progress: Progress) -> FringingMeasurement:
    """The panel's fringing and fill factor; a measurement that fails keeps the phase table it follows
    (recorded without them, i.e. an ideal panel to the twin, the reason in the record and the progress)."""
    try:
        return measure_fringing(acq, log, table, progress=progress)
    except (AmbiguousMeasurement, SaturatedFrames, EmptyFrames) as failed:
        progress(f"fringing not measured, the phase table kept: {failed}", 1.0)
        return FringingMeasurement({"fringing_not_measured": str(failed)}, {})


def calibrate_camera(bench: Bench, out_dir: str | Path, progress: Progress | None = None,
                     settings: CameraSweepSettings = CameraSweepSettings(), retry: RetryPolicy | None = None) -> Path:
    """EMVA 1288 camera response: gain, read noise, dark level, saturation, linearity, flat field, hot pixels."""
    out = Path(out_dir)
    with kept_on_failure(RawLog(out, "camera")) as log:
        res = measure_camera_response(Acquirer(bench, policy=retry, on_fault=log.fault), log, settings, progress or no_progress)
    record = CalibrationRecord(
        kind="camera", device=bench.camera.info, wavelength_m=bench.spec.optics.wavelength_m,
        method="EMVA 1288: photon transfer (frame pairs, exposure sweep), dark frames, flat field",
        params=res.params, residuals=res.residuals, arrays=res.arrays,
    )
    return _save(record, out, bench, log)


def calibrate_registration(bench: Bench, out_dir: str | Path, progress: Progress | None = None,
                           settings: RegistrationSettings = RegistrationSettings(), retry: RetryPolicy | None = None) -> Path:
    """Affine maps input-modulator px → camera px and Fourier-SLM frequency → camera px."""
    out = Path(out_dir)
    with kept_on_failure(RawLog(out, "registration")) as log:
        res = measure_registration(Acquirer(bench, policy=retry, on_fault=log.fault), log, settings, progress or no_progress)
    record = CalibrationRecord(
        kind="registration", device=bench.camera.info, wavelength_m=bench.spec.optics.wavelength_m,
        method="centroided spots: input-modulator blocks, Fourier-SLM blazed ramps; least-squares affine",
        params=res.params, residuals=res.residuals, arrays=res.arrays,
    )
    record.params["input_slm"] = bench.input_slm.info.as_dict()
    record.params["fourier_slm"] = bench.fourier_slm.info.as_dict()
    return _save(record, out, bench, log)


def calibrate_input(bench: Bench, out_dir: str | Path, progress: Progress | None = None,
                    settings: InputResponseSettings = InputResponseSettings(), retry: RetryPolicy | None = None) -> Path:
    """Input-modulator response: gray level → relative intensity and effective amplitude, and the table
    back; makes the new table active on ``bench``."""
    out = Path(out_dir)
    with kept_on_failure(RawLog(out, "input_response")) as log:
        res = measure_input_response(Acquirer(bench, policy=retry, on_fault=log.fault), log, settings, progress or no_progress)
    record = CalibrationRecord(
        kind="input_response", device=bench.input_slm.info, wavelength_m=bench.spec.optics.wavelength_m,
        method="centred block at each gray level through a flat Fourier SLM, camera signal over dark summed over "
               "the block's image, full-on references interleaved",
        params=res.params, residuals=res.residuals, arrays=res.arrays,
    )
    path = _save(record, out, bench, log)
    apply_amplitude_table(bench, record)
    return path


CALIBRATIONS: dict[str, Callable[..., Path]] = {
    "slm_phase": calibrate_slm,
    "camera": calibrate_camera,
    "registration": calibrate_registration,
    "input_response": calibrate_input,
}


def calibrate_all(spec: BenchSpec, out_dir: str | Path, progress: Progress | None = None,
                  kinds: tuple[str, ...] = KINDS, slm_method: str = "diffraction",
                  retry: RetryPolicy | None = None) -> dict[str, Path]:
    """Open the bench, run the calibrations ``kinds`` in the order of :data:`calibration.records.KINDS`
    (whatever order they are given in), write ``out_dir/bench.toml``; kind → record path.

    The input response comes first: it needs no other calibration (its Fourier SLM is a flat gray
    level, it sums the camera signal over dark where the lit block images), and the later steps show their input patterns through
    its table: the interferometric SLM method's cosine grating above all, to which an uncorrected
    response (an LC modulator's cos²) adds harmonics whose second orders beat with the zero order at
    the very fringe frequency it demodulates. (The diffraction method, camera and registration show
    only dark and full on, which any table maps to the modulator's extremes.) An input-response record
    the bench file already names is applied unless the input response is measured anew.
    ``slm_method``: how the SLM phase response is measured (see SLM_METHODS); ``retry``: how
    acquisition faults are retried (None: the default policy)."""
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise CalibrationError(f"unknown calibration kind(s) {unknown}; expected some of {KINDS}")
    kinds = tuple(kind for kind in KINDS if kind in kinds)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = progress or no_progress
    paths: dict[str, Path] = {}
    kept = ("slm_phase",) if "input_response" in kinds else ("input_response", "slm_phase")
    with open_session(spec, kinds=kept) as session:
        bench = session.bench
        for i, kind in enumerate(kinds):
            def sub(message: str, fraction: float, i: int = i, kind: str = kind) -> None:
                report(f"{kind}: {message}", (i + min(max(fraction, 0.0), 1.0)) / len(kinds))

            if kind == "slm_phase":
                paths[kind] = calibrate_slm(bench, out, sub, method=slm_method, retry=retry)
            else:
                paths[kind] = CALIBRATIONS[kind](bench, out, sub, retry=retry)
    write_bench_file(spec, out / "bench.toml", paths)
    return paths


_CALIBRATION_TABLE = re.compile(r"^\[calibration\][^\n]*\n(?:(?!\[)[^\n]*\n?)*", re.MULTILINE)


def bench_text(spec: BenchSpec) -> str:
    if spec.source == "<embedded mock bench>":
        from importlib import resources

        return resources.files("mock_hw").joinpath("default_bench.toml").read_text()
    path = Path(spec.source)
    if not path.is_file():
        raise FileNotFoundError(f"bench file {spec.source} cannot be copied (not a file); save it to a file first")
    return path.read_text()


def write_bench_file(spec: BenchSpec, path: str | Path, records: dict[str, Path]) -> Path:
    """The bench file of ``spec`` with a [calibration] table: its active records overlaid with ``records``.

    New records are named relative to the written file; records kept from ``spec`` by absolute path.
    """
    path = Path(path)
    text = _CALIBRATION_TABLE.sub("", bench_text(spec)).rstrip() + "\n"
    active = {k: str(Path(v).resolve()) for k, v in spec.calibration.items()}
    for kind, rec in records.items():
        rec = Path(rec).resolve()
        try:
            active[kind] = str(rec.relative_to(path.parent.resolve()))
        except ValueError:
            active[kind] = str(rec)
    lines = ["", "[calibration]"] + [f'{kind} = "{active[kind]}"' for kind in KINDS if kind in active]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n".join(lines) + "\n")
    BenchSpec.from_file(path)  # the written file must parse
    return path
