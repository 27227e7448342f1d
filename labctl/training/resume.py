"""Epoch-level resume: after every epoch, rank 0 writes what training needs to continue from there
(weights, optimiser, learning-rate schedule, every process's random generator, the history) to
``train_state.pt`` in the run folder; ``labctl train ... --resume`` continues from it and the file
is removed once the checkpoint is written.

The file holds tensors and plain data only and is read with ``torch.load(weights_only=True)``: a
file holding any other object is refused, never unpickled. Under ``torchrun`` every process reads
it, so the run folder must be on storage all nodes see (as the checkpoint's is on a cluster).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from drivers.errors import LabctlError

STATE_NAME = "train_state.pt"
FORMAT = "labctl-train-state"


class ResumeError(LabctlError, ValueError):
    """There is no training state to resume, or it belongs to another run."""


@dataclass(frozen=True)
class TrainStateFile:
    """``path`` of the state file; ``identity``: what must match to resume (settings, model, data,
    number of processes); ``resume``: continue from the file rather than start afresh."""

    path: Path
    identity: dict[str, Any] = field(default_factory=dict)
    resume: bool = False

    @classmethod
    def in_folder(cls, out_dir: str | Path, identity: dict[str, Any], resume: bool) -> TrainStateFile:
        return cls(Path(out_dir) / STATE_NAME, identity, resume)

    def load(self) -> dict[str, Any] | None:
        """The saved state when resuming (None when not); :class:`ResumeError` if it cannot be resumed."""
        if not self.resume:
            return None
        if not self.path.is_file():
            raise ResumeError(f"nothing to resume: {self.path} does not exist (the run finished, or never completed an epoch)")
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises pickle, zip and runtime errors for foreign files
            raise ResumeError(f"{self.path} is not a training state of tensors and plain data: {type(exc).__name__}") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ResumeError(f"{self.path} is not a labctl training state (no \"format\": \"{FORMAT}\")")
        changed = sorted(k for k in set(self.identity) | set(state.get("identity", {})) if state["identity"].get(k) != self.identity.get(k))
        if changed:
            raise ResumeError(
                f"{self.path} was written by a run with other {', '.join(changed)}; resume with the same options "
                "(and number of processes), or choose another --out"
            )
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Write atomically: a run killed while saving leaves the previous epoch's state."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        torch.save({"format": FORMAT, "identity": self.identity, **state}, partial)
        partial.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
