"""Checkpoints: ``model.pt`` (a plain state dict, loadable with ``torch.load(weights_only=True)``)
beside ``model.json`` (kind, architecture config, data spec, metrics, training history).

:func:`load_checkpoint` rebuilds the architecture from the JSON and loads the weights strictly, so
a weights file of another architecture, or a JSON edited to another one, fails with a
:class:`CheckpointError` naming the file instead of half-loading.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from drivers.errors import LabctlError
from labctl.models.config_bounds import ConfigBoundsError, check_config
from labctl.models.optics_aware import OpticsAwareConfig, OpticsAwareStudent, state_from_older
from labctl.models.student import SCLCStudent, StudentConfig
from labctl.models.teacher import TeacherCNN, TeacherConfig, UNetConfig, UNetTeacher

WEIGHTS_NAME, META_NAME = "model.pt", "model.json"
FORMAT = "labctl-checkpoint"
#: 2: an optics-aware student's phase stored as logits; 3: as ``phase.value``, logits where its panel
#: fringes, radians where not (:class:`labctl.optics.phase_parameter.MaskPhase`)
VERSION = 3
KINDS = ("teacher", "sclc", "optics_aware", "linear")


class CheckpointError(LabctlError, ValueError):
    """A checkpoint is missing, malformed, or does not match the architecture it claims."""

    def __init__(self, path: object, message: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {message}")


@dataclass
class LoadedCheckpoint:
    model: nn.Module
    kind: str
    config: Any
    meta: dict
    path: Path
    sha256: str


def kind_of(model: nn.Module) -> str:
    if isinstance(model, (TeacherCNN, UNetTeacher)):
        return "teacher"
    if isinstance(model, OpticsAwareStudent):
        return "optics_aware"
    if isinstance(model, SCLCStudent):
        return model.config.kind
    raise TypeError(f"{type(model).__name__} is not a labctl model")


def build_model(kind: str, config: dict) -> nn.Module:
    """The untrained model of ``kind`` described by ``config`` (a JSON dict); raises TypeError /
    ValueError for configs that do not describe one."""
    if kind == "teacher":
        if config.get("task") == "segmentation":
            return UNetTeacher(UNetConfig(**config))
        return TeacherCNN(TeacherConfig(**config))
    if kind in ("sclc", "linear"):
        return SCLCStudent(StudentConfig(**config))
    if kind == "optics_aware":
        return OpticsAwareStudent(OpticsAwareConfig(**config))
    raise CheckpointError("model config", f"unknown model kind {kind!r}; expected one of {KINDS}")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(out_dir: str | Path, model: nn.Module, meta: dict | None = None) -> Path:
    """Write ``out_dir/model.pt`` and ``out_dir/model.json``; returns the weights path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / WEIGHTS_NAME
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(state, weights)
    doc = {
        "format": FORMAT, "version": VERSION, "kind": kind_of(model), "config": asdict(model.config),
        "weights": WEIGHTS_NAME, "sha256": sha256_of(weights), **(meta or {}),
    }
    (out / META_NAME).write_text(json.dumps(doc, indent=2, default=str))
    return weights


def _paths(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        return path / WEIGHTS_NAME, path / META_NAME
    if path.suffix == ".json":
        return path.with_name(WEIGHTS_NAME) if path.name == META_NAME else path.with_suffix(".pt"), path
    return path, path.with_name(META_NAME) if path.name == WEIGHTS_NAME else path.with_suffix(".json")


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Load a checkpoint from its weights file, its JSON or its run directory; model in eval mode."""
    weights, meta_path = _paths(Path(path).expanduser())
    for p, what in ((meta_path, "checkpoint description (model.json)"), (weights, "weights file")):
        if not p.is_file():
            raise CheckpointError(p, f"no such {what}; expected {WEIGHTS_NAME} and {META_NAME} from `labctl train`")
    try:
        doc = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(meta_path, f"not a labctl checkpoint description: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(meta_path, f"not a labctl checkpoint description (no \"format\": \"{FORMAT}\")")
    kind, config = doc.get("kind"), doc.get("config")
    if kind not in KINDS or not isinstance(config, dict):
        raise CheckpointError(meta_path, f"unknown model kind {kind!r}; expected one of {KINDS}")
    try:
        check_config(kind, config)
    except ConfigBoundsError as exc:
        raise CheckpointError(meta_path, str(exc)) from None
    try:
        model = build_model(kind, config)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(meta_path, f"config does not describe a {kind} model: {exc}") from None
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors for foreign files
        raise CheckpointError(weights, f"cannot read the weights as a state dict: {exc}") from None
    if not isinstance(state, dict):
        raise CheckpointError(weights, f"holds a {type(state).__name__}, not a state dict")
    version = doc.get("version")
    if version not in range(1, VERSION + 1):
        raise CheckpointError(meta_path, f"checkpoint format version {version!r}; this labctl reads versions 1 to {VERSION}")
    if isinstance(model, OpticsAwareStudent) and version < VERSION:
        state = state_from_older(state, version, model.phase)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            weights, f"weights do not fit the {kind} architecture described in {meta_path.name} (another model's checkpoint?): "
            f"{len(missing)} missing tensor(s) {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # same names, other shapes
        detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])
        raise CheckpointError(weights, f"weights do not fit the {kind} architecture described in {meta_path.name}: {detail}") from None
    model.eval()
    meta = {k: v for k, v in doc.items() if k not in ("format", "version", "kind", "config")}
    return LoadedCheckpoint(model, kind, model.config, meta, weights, sha256_of(weights))
