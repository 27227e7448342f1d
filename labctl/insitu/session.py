"""``labctl finetune``: close the gap between a mask trained in simulation and the real optics.

Stages, each checkpointed so that a killed run resumes where it stopped (captured frames are cached,
so a repeated stage costs no bench time):

1. ``measure``: exposure, readout scale, the digital student's accuracy and the optical accuracy
   before fine-tuning, on the held-out inputs (test split).
2. ``backend``: capture a training subset (``fraction`` of the training set), fine-tune the back end
   on those frames with KD from the student's teacher (the model its record says it was distilled
   from: a nonlinear teacher, or, for an optics-aware student trained with ``--distil-from-start``
   as ``labctl demo`` trains it, the SCLC student it started from; ``--teacher`` overrides it),
   measure again.
3. ``twin``: refine the twin (pose from the registration, then defocus, phase scale, residual pose)
   against the frames of stage 2.
4. ``pat`` epochs: physics-aware training of the mask and back end, one pass over ``fraction`` of the
   training set per epoch (the mask on the SLM is updated every batch), each epoch a fresh subset
   (``fresh_subsets``); after the last epoch, one more such pass re-fits the back end to the final
   mask; measure.

Bench frames used for training are counted; frames captured only to measure accuracy are counted
apart (``evaluation_frames``).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from calibration.acquisition import Acquirer, RetryPolicy
from calibration.session import describe, open_session, phase_table_for
from drivers.bench import BenchSpec
from drivers.errors import LabctlError
from labctl.insitu.backend_ft import BackendFineTuneConfig, accuracy, finetune_validated
from labctl.insitu.capture_cache import CaptureCache, capture_key
from labctl.insitu.pat import PATConfig, PhysicsAwareTrainer
from labctl.insitu.record import FineTuneRecord
from labctl.insitu.twin_fit import (
    START_FRINGING_PX,
    ChannelAffine,
    RefinableTwin,
    TwinFitConfig,
    lc_phase_offset,
    not_modelled,
    refine_twin,
)
from labctl.masks.mask_file import MaskFile, MaskFileError
from labctl.models.checkpoint import load_checkpoint, save_checkpoint
from labctl.models.optics_aware import OpticsAwareStudent
from labctl.optics.geometry import pose_from_affine
from labctl.optics.phase_parameter import RESTORE_MARGIN
from labctl.optics.quantise import table_phase_levels, uniform_levels
from labctl.optics.readout import channel_points
from labctl.records.provenance import sha256_file, software_provenance
from labctl.runner.bench_calibration import BenchCalibration
from labctl.optics.channel_scale import ChannelScale
from labctl.runner.optical_inference import OpticalInference
from labctl.optics.layout import images_of, modulator_amplitudes
from labctl.runner.multiplex import capture_groups
from labctl.runner.session import calibrate_readout, readout_oversample, student_for_masks
from labctl.training.metrics import evaluate

STAGES = ("measure", "backend", "twin", "pat", "done")


class FineTuneError(LabctlError, RuntimeError):
    """The fine-tuning inputs do not fit together (student, masks, data, previous state)."""


def _plain(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into tensors and Python numbers, so that the state
    file holds only what ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    return value


def _load_plain_state(path: Path) -> dict[str, Any]:
    """A fine-tuning state file, read as tensors and plain data only: a file holding any other object
    (which an unrestricted unpickler would construct, running its code) is refused, not executed."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, zip and runtime errors for foreign files
        raise FineTuneError(
            f"{path} is not a fine-tuning state file of tensors and plain data "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); remove it or choose another --out"
        ) from exc
    if not isinstance(state, dict) or not isinstance(state.get("identity"), dict) or state.get("stage") not in STAGES:
        raise FineTuneError(f"{path} is not a fine-tuning state file (no identity or stage); remove it or choose another --out")
    return state


@dataclass
class FineTuneOptions:
    fraction: float = 0.1  # of the training set captured per epoch
    heldout: int | None = None  # test inputs used to measure (None: all)
    physics_aware: bool = True
    exposure_s: float | None = None
    backend: BackendFineTuneConfig = field(default_factory=BackendFineTuneConfig)
    twin: TwinFitConfig = field(default_factory=TwinFitConfig)
    pat: PATConfig = field(default_factory=PATConfig)
    seed: int = 0
    #: each physics-aware epoch (and the final back-end re-fit) passes over a *different* ``fraction`` of the
    #: training set, drawn without repeats until the set is used up: every epoch stays one pass over
    #: ``fraction`` of it, while the back end and mask see more distinct examples over the epochs (False:
    #: every pass over the same subset, the one the back end was first fine-tuned on)
    fresh_subsets: bool = True
    #: the final back-end re-fit learns from every frame this session captured for training (the back-end
    #: pass, each physics-aware batch under the mask it was shown with, the re-fit pass), read back from the
    #: capture cache at no bench time; False: from the re-fit pass alone
    replay: bool = True
    #: what the input modulator is, for the refined twin: "amplitude" (the field as asked: linear in gray,
    #: or made so by an input-response table) or "dmd" (binary mirrors, gray by pulse-width modulation:
    #: a frame is the sum of its bit planes' intensities, the gray levels those the active table shows)
    input_modulator: str = "amplitude"

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise FineTuneError(f"fraction must be in (0, 1]; got {self.fraction}")
        if self.input_modulator not in ("amplitude", "dmd"):
            raise FineTuneError(f"input_modulator must be 'amplitude' or 'dmd'; got {self.input_modulator!r}")


@dataclass
class FineTuneResult:
    digital: float
    optical_before: float
    optical_backend_ft: float
    optical_pat: float | None
    bench_frames: int
    evaluation_frames: int
    checkpoint: Path
    masks: Path
    history: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items() if k != "history"}


class FineTuneSession:
    def __init__(
        self,
        spec: BenchSpec,
        masks_path: str | Path,
        student_path: str | Path | None,
        data,
        out_dir: str | Path,
        teacher_path: str | Path | None = None,
        options: FineTuneOptions | None = None,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.spec = spec
        self.masks_path = Path(masks_path)
        self.masks = MaskFile.load(masks_path)
        self.student = student_for_masks(self.masks, student_path)
        if data.task != "classification":
            raise FineTuneError("in-situ fine-tuning supports classification students")
        self.data = data
        self.out = Path(out_dir)
        self.options = options or FineTuneOptions()
        self.log = log
        self.layout = self.masks.layout
        self.oversample = readout_oversample(self.student)
        self.physics_aware = self.options.physics_aware and self.student.kind == "optics_aware" and self.layout.channel_groups == 1
        if self.options.physics_aware and not self.physics_aware:
            why = ("its channels are multiplexed over several masks, which physics-aware training does not handle yet"
                   if self.student.kind == "optics_aware" else "its mask is a fixed encoding of its filters")
            log(f"{self.student.kind} student: {why}, so only the back end is fine-tuned")
        teacher_path = teacher_path or self.student.meta.get("teacher")
        self.teacher = load_checkpoint(teacher_path).model.eval() if teacher_path else None
        self.subset = self.subset_for_pass(0)
        self.train_images, self.train_labels = images_of(data.train)
        self.test_images, self.test_labels = images_of(data.test, self.options.heldout)
        modulator_amplitudes(self.test_images[:1], self.layout)  # size/range check before any device I/O

    def subset_for_pass(self, k: int) -> np.ndarray:
        """The training inputs (sorted indices) of pass ``k`` over ``fraction`` of the training set: pass 0
        is the back-end fine-tuning's (the twin is refined on it too); with ``fresh_subsets`` pass k ≥ 1
        (physics-aware epoch k, the final re-fit after the last) takes the next slice of one seeded
        permutation, so no input repeats until the set is used up (then a new permutation); without,
        every pass is pass 0's."""
        return pass_subset(len(self.data.train), self.options.fraction, self.options.seed, k if self.options.fresh_subsets else 0)

    # -- state ---------------------------------------------------------------------------------------
    def _state_path(self) -> Path:
        return self.out / "state.pt"

    def _load_state(self, resume: bool) -> dict[str, Any]:
        path = self._state_path()
        if path.exists() and not resume:
            raise FineTuneError(f"{self.out} holds a fine-tuning run; use --resume to continue it or choose another --out")
        identity = {
            "mask_sha256": sha256_file(self.masks_path), "model_sha256": self.student.sha256, "data": self.data.spec,
            "fraction": self.options.fraction, "heldout": self.options.heldout, "seed": self.options.seed,
            "fresh_subsets": self.options.fresh_subsets, "replay": self.options.replay,
            "bench": self.spec.raw,
        }
        if not path.exists():
            return {"stage": "measure", "epoch": 0, "bench_frames": 0, "evaluation_frames": 0, "history": [], "results": {},
                    "identity": identity}
        state = _load_plain_state(path)
        changed = [k for k, v in identity.items() if state["identity"].get(k) != v]
        if changed:
            raise FineTuneError(
                f"{path} was made with another {', '.join(changed)} (bench file, masks, student, data or options); "
                "resume with the same ones, or choose another --out"
            )
        self.log(f"resuming at stage {state['stage']!r} (epoch {state['epoch']})")
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        tmp = self._state_path().with_suffix(".partial")
        torch.save(_plain(state), tmp)
        tmp.replace(self._state_path())

    # -- bench I/O -----------------------------------------------------------------------------------
    def _frame_shape(self, bench) -> tuple[int, ...]:
        """What one input's capture is: a frame, or one frame per channel group."""
        groups = self.masks.frames_per_input
        return (groups, *bench.camera.grid.shape) if groups > 1 else bench.camera.grid.shape

    def _key(self, split: str, gray: np.ndarray) -> str:
        return capture_key(self.data.spec, split, gray, self.bench.camera.exposure_s)

    def _replayed(self, state: dict) -> tuple[torch.Tensor, np.ndarray]:
        """Readouts and training indices of every pass this session captured for training, from the cache."""
        def missing(indices: np.ndarray) -> np.ndarray:
            raise FineTuneError(f"{self.cache.path} lost frames of this run ({indices.size} inputs); remove --resume's folder and start again")

        readouts, indices = [], []
        for entry in state.get("replay", []):
            idx = np.asarray(entry["indices"], dtype=np.int64)
            readouts.append(self.scale.apply(self.processor.readout(self.cache.get_or_capture(entry["key"], idx, missing))))
            indices.append(idx)
        return torch.cat(readouts), np.concatenate(indices)

    def _readouts(self, split: str, indices: np.ndarray, gray: np.ndarray, state: dict, counter: str) -> torch.Tensor:
        """Readouts in the back end's units for inputs ``indices`` of ``split`` under mask ``gray``."""
        images = self.train_images if split == "train" else self.test_images
        key = self._key(split, gray)

        def capture(missing: np.ndarray) -> np.ndarray:
            frames = [
                capture_groups(self.acquirer, _groups(gray), modulator_amplitudes(images[missing[i : i + 64]], self.layout),
                               int(missing[i])).data
                for i in range(0, missing.size, 64)
            ]
            state[counter] += int(missing.size)
            return np.concatenate(frames)

        frames = self.cache.get_or_capture(key, indices, capture)
        return self.scale.apply(self.processor.readout(frames))

    # -- the run -------------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> FineTuneResult:
        self.out.mkdir(parents=True, exist_ok=True)
        state = self._load_state(resume)
        model = self.student.model
        if "back_end" in state:
            model.back.load_state_dict(state["back_end"])
        phase = torch.as_tensor(state.get("phase", self.masks.phase_rad)).float()
        with warnings.catch_warnings(record=True) as caught, open_session(self.spec) as session, \
                CaptureCache(self.out / "captures.h5", self._frame_shape(session.bench)) as self.cache:
            warnings.simplefilter("always")
            self.bench = bench = session.bench
            self.masks.check_bench(session.description, bench.fourier_slm.phase_table)
            calib = BenchCalibration.for_session(session, self.layout)
            for w in caught:
                self.log(f"warning: {w.message}")
            state.setdefault("events", [])
            self.acquirer = Acquirer(bench, self.masks.group_gray()[0], RetryPolicy(), on_fault=lambda kind, message, index: (
                state["events"].append({"time_s": time.time(), "kind": kind, "message": message}), self.log(f"fault: {message}")))
            self.processor = OpticalInference(model.back, self.layout, calib.affine, "classification", self.data.num_classes,
                                              correct=calib.correct_frames, oversample=self.oversample,
                                              warp=calib.camera_warp)
            if "scale" in state:
                bench.camera.exposure_s = state["exposure_s"]
                self.scale = ChannelScale(np.asarray(state["scale"]["gain"]), np.asarray(state["scale"]["offset"]))
            else:
                scale_idx = self.subset[: min(64, self.subset.size)]
                self.scale = calibrate_readout(self.acquirer, self.processor, self.student, self.train_images[scale_idx],
                                               self.layout, self.options.exposure_s, self.masks.group_gray())
                state["bench_frames"] += int(scale_idx.size)
                state.update(scale=self.scale.to_dict(), exposure_s=bench.camera.exposure_s)
            test_idx = np.arange(len(self.test_images))
            labels_test = torch.from_numpy(self.test_labels)
            labels_train = torch.from_numpy(self.train_labels[self.subset])

            def measure(stage: str, back, gray: np.ndarray) -> float:
                acc = accuracy(back, self._readouts("test", test_idx, gray, state, "evaluation_frames"), labels_test)
                state["history"].append({"stage": stage, "epoch": state["epoch"], "bench_frames": state["bench_frames"], "accuracy": acc})
                self.log(f"{stage}: optical accuracy {acc:.4f} after {state['bench_frames']} bench frames")
                return acc

            if state["stage"] == "measure":
                heldout = self.data.test.subset(torch.arange(len(self.test_images)))
                digital = evaluate(model, heldout, "classification")["accuracy"]
                state["results"]["digital"] = digital
                self.log(f"digital student accuracy {digital:.4f}")
                state["results"]["optical_before"] = measure("before", model.back, self.masks.gray)
                state["stage"] = "backend"
                self._save_state(state)

            teacher_logits = self._teacher_logits(self.train_images[self.subset])
            if state["stage"] == "backend":
                det = self._readouts("train", self.subset, self.masks.gray, state, "bench_frames")
                state["replay"] = [{"key": self._key("train", self.masks.gray), "indices": self.subset.copy()}]
                tuned, info = finetune_validated(model.back, det, labels_train, teacher_logits, self.options.backend)
                self.log(f"back end {'fine-tuned' if info['accepted'] else 'kept (fine-tuning did not help)'}: "
                         f"validation {info['validation_before']:.3f} -> {info['validation_after']:.3f}")
                model.back.load_state_dict(tuned.state_dict())
                state["results"]["optical_backend_ft"] = measure("backend", model.back, self.masks.gray)
                state["back_end"] = model.back.state_dict()
                state["stage"] = "twin" if self.physics_aware else "done"
                self._save_state(state)

            if self.physics_aware and state["stage"] in ("twin", "pat"):
                phase = self._physics_aware(state, model, calib, phase, teacher_logits, labels_train, measure)

        return self._finish(state, model, phase)

    def _physics_aware(self, state, model, calib: BenchCalibration, phase, teacher_logits, labels_train, measure) -> torch.Tensor:
        table = self.bench.fourier_slm.phase_table
        pose = pose_from_affine(self.layout.geometry, self.layout.input_rows, self.layout.input_cols, self.layout.input_pitch_m,
                                self.layout.camera_rows, self.layout.camera_cols, self.layout.camera_pitch_m, calib.affine)
        bits = self.bench.input_slm.bit_depth if self.options.input_modulator == "dmd" else None
        twin = RefinableTwin(self.layout, pose, fringing_px=START_FRINGING_PX, input_bits=bits)

        def lc_offset(phase_np: np.ndarray) -> np.ndarray:  # the 2π branch each pixel's gray level is on
            return lc_phase_offset(table, phase_np, table.gray_for_phase(np.mod(phase_np, 2 * np.pi)))

        points = channel_points(self.layout, calib.affine, self.oversample, calib.camera_warp)

        def twin_amplitudes(indices: np.ndarray) -> torch.Tensor:
            amplitudes_np = modulator_amplitudes(self.train_images[indices], self.layout)
            if bits is not None:  # the twin's DMD shows gray = amplitude·(L−1): give it the gray levels the bench shows
                inp = self.bench.input_slm
                amplitudes_np = (inp.amplitude_table.gray_for_amplitude(amplitudes_np) / (inp.levels - 1)).astype(amplitudes_np.dtype)
            return torch.from_numpy(amplitudes_np)

        amplitudes = twin_amplitudes(self.subset)
        if "twin" in state:
            twin.load_state_dict(state["twin"])
            twin_to_bench = ChannelAffine(torch.tensor(state["twin_affine"][0]), torch.tensor(state["twin_affine"][1]))
        else:
            start_gray = table.gray_for_phase(phase.numpy())
            det = self._readouts("train", self.subset, start_gray, state, "bench_frames")
            lc = phase + torch.from_numpy(lc_offset(phase.numpy().astype(np.float64))).to(phase)
            twin_to_bench, summary = refine_twin(twin, amplitudes, lc, det, points, self.oversample, self.options.twin)
            self.log("twin refined: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items()))
            summary["not_modelled"] = not_modelled(twin)
            self.log("twin cannot express: " + "; ".join(summary["not_modelled"]))
            state.update(twin=twin.state_dict(), twin_affine=(twin_to_bench.gain.tolist(), twin_to_bench.offset.tolist()), twin_summary=summary)
            state["stage"] = "pat"
            self._save_state(state)
        trainer = PhysicsAwareTrainer(phase, model.back, twin, points, self.oversample, twin_to_bench,
                                      shown_levels(table), self.options.pat, lc_offset)
        batch = self.options.pat.batch_size
        while state["epoch"] < self.options.pat.epochs:
            subset = self.subset_for_pass(state["epoch"] + 1)  # this epoch's pass over `fraction` of the training set
            if subset is not self.subset and not np.array_equal(subset, self.subset):
                amplitudes = twin_amplitudes(subset)
                teacher_logits = self._teacher_logits(self.train_images[subset])
                labels_train = torch.from_numpy(self.train_labels[subset])
            order = np.random.default_rng((self.options.seed + 1, state["epoch"])).permutation(subset.size)
            losses = []
            epoch_start, frames_start = time.perf_counter(), state["bench_frames"]
            epoch_replay: list[dict] = []
            for start in range(0, order.size, batch):
                pick = order[start : start + batch]
                if pick.size < 2:
                    continue
                indices = subset[pick]

                def bench_readout(phase_np: np.ndarray, indices=indices) -> torch.Tensor:
                    gray = table.gray_for_phase(phase_np)
                    epoch_replay.append({"key": self._key("train", gray), "indices": indices.copy()})
                    return self._readouts("train", indices, gray, state, "bench_frames")

                teacher = teacher_logits[pick] if teacher_logits is not None else None
                step = trainer.step(amplitudes[pick], labels_train[pick], teacher, bench_readout)
                losses.append(step.loss)
            state["epoch"] += 1
            state.setdefault("replay", []).extend(epoch_replay)
            phase = trainer.phase()
            state.update(phase=phase, back_end=model.back.state_dict())
            gray = table.gray_for_phase(trainer.phase_for_slm())
            rate = (state["bench_frames"] - frames_start) / max(time.perf_counter() - epoch_start, 1e-9)
            self.log(f"physics-aware epoch {state['epoch']}: loss {np.mean(losses):.4f}, "
                     f"{state['bench_frames'] - frames_start} bench frames at {rate:.1f} frames/s")
            if state["epoch"] == self.options.pat.epochs:  # one more pass, the back end re-fitted to the final mask
                refit = self.subset_for_pass(state["epoch"] + 1)
                det = self._readouts("train", refit, gray, state, "bench_frames")
                if self.options.replay:  # and every earlier training frame of this run, each under its own mask
                    state["replay"].append({"key": self._key("train", gray), "indices": refit.copy()})
                    det, refit = self._replayed(state)
                labels_refit = torch.from_numpy(self.train_labels[refit])
                tuned, info = finetune_validated(model.back, det, labels_refit, self._teacher_logits(self.train_images[refit]),
                                                 self.options.backend)
                self.log(f"back end re-fitted on {refit.size} frames ({np.unique(refit).size} inputs): "
                         f"validation {info['validation_before']:.3f} -> {info['validation_after']:.3f}"
                         f"{'' if info['accepted'] else ' (kept)'}")
                model.back.load_state_dict(tuned.state_dict())
                state["back_end"] = model.back.state_dict()
                state["results"]["optical_pat"] = measure("pat", model.back, gray)
                state["stage"] = "done"
            else:
                measure(f"pat epoch {state['epoch']}", model.back, gray)
            self._save_state(state)
        return phase

    def _teacher_logits(self, images: np.ndarray) -> torch.Tensor | None:
        if self.teacher is None:
            return None
        with torch.no_grad():
            return torch.cat([self.teacher(torch.from_numpy(images[i : i + 256])) for i in range(0, len(images), 256)])

    # -- results -------------------------------------------------------------------------------------
    def _finish(self, state: dict, model, phase: torch.Tensor) -> FineTuneResult:
        if isinstance(model, OpticsAwareStudent):
            model.set_phase(phase, RESTORE_MARGIN)
        meta = dict(self.student.meta)
        meta.update(finetuned_from=str(self.student.path), finetune=state["results"], bench_frames=state["bench_frames"])
        ckpt = save_checkpoint(self.out / "student", model, meta)
        new_ckpt = load_checkpoint(ckpt)
        phase_np = np.mod(phase.numpy().astype(np.float64), 2 * np.pi)
        table = phase_table_for(self.spec, describe(self.spec))
        gray = table.gray_for_phase(phase_np)
        masks_out = self.out / "masks.h5"
        if masks_out.exists():
            masks_out.unlink()  # written by this run's previous attempt: the state file owns it
        MaskFile(
            phase_rad=phase_np, gray=gray, method=self.masks.method, layout=self.layout,
            model={"kind": new_ckpt.kind, "checkpoint": str(new_ckpt.path.resolve()), "sha256": new_ckpt.sha256},
            slm=self.masks.slm, calibration=self.masks.calibration,
            extra={"finetuned_from": str(self.masks_path), "provenance": software_provenance()},
        ).save(masks_out)
        r = state["results"]
        result = FineTuneResult(
            digital=r["digital"], optical_before=r["optical_before"], optical_backend_ft=r["optical_backend_ft"],
            optical_pat=r.get("optical_pat"), bench_frames=state["bench_frames"], evaluation_frames=state["evaluation_frames"],
            checkpoint=new_ckpt.path, masks=masks_out, history=state["history"],
        )
        FineTuneRecord.write(self.out / "finetune.h5", result, state, {
            "bench_file": str(self.spec.source), "mask_file": str(self.masks_path), "student": str(self.student.path),
            "subset_size": int(self.subset.size), "options": json.loads(json.dumps(asdict(self.options), default=str)),
            "software": software_provenance(),
        })
        return result


def pass_subset(n_train: int, fraction: float, seed: int, k: int) -> np.ndarray:
    """Sorted training indices of pass ``k`` over ``fraction`` of ``n_train`` inputs: the k-th slice of a
    seeded permutation, a new permutation once the slices are used up (pass 0: the first slice of
    ``seed``'s permutation, the subset a single-subset run uses throughout)."""
    size = min(n_train, max(2, math.ceil(fraction * n_train)))
    cycle, slot = divmod(k, n_train // size)
    order = np.random.default_rng(seed if cycle == 0 else (seed, cycle)).permutation(n_train)
    return np.sort(order[slot * size : (slot + 1) * size])


def shown_levels(table) -> torch.Tensor:
    """The phases the panel shows through ``table`` (the session's active phase table, which may be
    another than the one the mask was designed for): a calibrated table's levels (205–246 per 2π,
    unevenly spaced), 2**bits uniform ones for the linear table."""
    levels = uniform_levels(table.bit_depth) if table.record_id == "linear" else table_phase_levels(table.gray)
    return torch.tensor(levels, dtype=torch.float64)


def _groups(gray: np.ndarray) -> list[np.ndarray]:
    """Gray levels as one (rows, cols) mask per channel group; one group's is ``gray`` itself (the
    acquirer tells masks apart by identity)."""
    return [gray] if gray.ndim == 2 else list(gray)


__all__ = ["FineTuneError", "FineTuneOptions", "FineTuneResult", "FineTuneSession", "MaskFileError", "pass_subset"]
