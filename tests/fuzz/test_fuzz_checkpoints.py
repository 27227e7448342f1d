"""Checkpoints edited or forged: model configs whose sizes would exhaust memory (refused before
allocation, with the estimate), settings of the wrong type, weights files that are no state dict or
that would run code when unpickled (never run), and descriptions that are no JSON object."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from labctl.models.checkpoint import CheckpointError, build_model, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory, trained) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    teacher = build_model("teacher", {"task": "classification", "in_channels": 1, "size": 16, "num_classes": 10, "width": 4, "hidden": 8})
    sclc = build_model("sclc", {"task": "classification", "in_channels": 1, "size": 16, "num_classes": 10, "channels": [4], "hidden": 8})
    save_checkpoint(root / "teacher", teacher)
    save_checkpoint(root / "sclc", sclc)
    return {"teacher": root / "teacher", "sclc": root / "sclc", "optics_aware": trained.student.parent}


def _copy(originals: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(originals[kind], tmp_path / kind))


def _edit_config(directory: Path, **changes) -> Path:
    meta = directory / "model.json"
    doc = json.loads(meta.read_text())
    for key, value in changes.items():
        if key.startswith("layout."):
            doc["config"]["layout"][key.split(".", 1)[1]] = value
        else:
            doc["config"][key] = value
    meta.write_text(json.dumps(doc))
    return meta


CONFIGS = [
    ("teacher", {"width": 10**6}, "needs about .* TiB .* over the 4.0 GiB budget"),
    ("teacher", {"width": 10**9}, "too large to count .*Storage size calculation overflowed"),
    ("teacher", {"width": 2**40}, r"width = 1099511627776 is outside 1\.\.2147483647"),
    ("teacher", {"width": 5000, "depth": 8}, "over the 4.0 GiB budget"),
    ("teacher", {"hidden": 10**8}, "over the 4.0 GiB budget"),
    ("teacher", {"num_classes": 10**9}, r"num_classes = 1000000000 is outside 1\.\.100000"),
    ("teacher", {"size": 10**6}, r"size = 1000000 is outside 8\.\.1024"),
    ("teacher", {"size": 0}, r"size = 0 is outside 8\.\.1024"),
    ("teacher", {"size": -28}, r"size = -28 is outside"),
    ("teacher", {"size": "28"}, "size = '28' is not an integer"),
    ("teacher", {"size": 28.0}, "size = 28.0 is not an integer"),
    ("teacher", {"width": True}, "width = True is not an integer"),
    ("teacher", {"width": None}, "width = None is not an integer"),
    ("teacher", {"depth": 10**6}, r"depth = 1000000 is outside 1\.\.16"),
    ("teacher", {"convs": 1000}, r"convs = 1000 is outside 1\.\.8"),
    ("teacher", {"in_channels": 10**5}, r"in_channels = 100000 is outside 1\.\.64"),
    ("sclc", {"channels": [10**6]}, r"channels\[0\] = 1000000 is outside 1\.\.4096"),
    ("sclc", {"channels": [4] * 100}, "channels must be a list of at most 16 integers"),
    ("sclc", {"channels": "16"}, "channels must be a list"),
    ("sclc", {"channels": [4, -1]}, r"channels\[1\] = -1 is outside"),
    ("sclc", {"hidden": 10**9}, "needs about .* over the 4.0 GiB budget"),
    ("sclc", {"backend_conv": 10**7}, "over the 4.0 GiB budget"),
    ("sclc", {"pool": [10**6]}, r"pool\[0\] = 1000000 is outside"),
    ("sclc", {"init_kernel": 10**7}, r"init_kernel = 10000000 is outside"),
    ("optics_aware", {"hidden": 10**9}, "needs about .* weights and optical planes, over the 4.0 GiB budget"),
    ("optics_aware", {"layout.fourier_rows": 10**6}, r"layout.fourier_rows = 1000000 is outside 0\.\.16384"),
    ("optics_aware", {"layout.camera_cols": 10**9}, r"layout.camera_cols = 1000000000 is outside"),
    ("optics_aware", {"layout.tiles": [[0, 0]] * 5000}, "layout.tiles holds 5000 tiles"),
    ("optics_aware", {"oversample": 10**4}, r"oversample = 10000 is outside 1\.\.16"),
    ("optics_aware", {"backend_conv_layers": 10**3}, r"backend_conv_layers = 1000 is outside 1\.\.8"),
]


@pytest.mark.parametrize("kind,changes,words", CONFIGS, ids=[f"{k}-{'-'.join(c)}" for k, c, _ in CONFIGS])
def test_oversized_or_mistyped_config_is_refused_before_allocation(originals, tmp_path: Path, kind: str, changes: dict, words: str) -> None:
    meta = _edit_config(_copy(originals, kind, tmp_path), **changes)
    with pytest.raises(CheckpointError, match=words) as info:
        load_checkpoint(meta.parent)
    assert info.value.path == str(meta)


class _RunsCode:
    """Unpickling this calls os.system: a forged weights file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


WEIGHTS = {
    "code in a pickle": lambda p, marker: p.write_bytes(pickle.dumps({"w": _RunsCode(marker)})),
    "code in a torch zip": lambda p, marker: __import__("torch").save({"w": _RunsCode(marker)}, p),
    "empty": lambda p, marker: p.write_bytes(b""),
    "truncated": lambda p, marker: p.write_bytes(p.read_bytes()[:200]),
    "random bytes": lambda p, marker: p.write_bytes(os.urandom(512)),
    "a list of tensors": lambda p, marker: __import__("torch").save([__import__("torch").zeros(3)], p),
    "another architecture": lambda p, marker: __import__("torch").save({"other.weight": __import__("torch").zeros(3)}, p),
}


@pytest.mark.parametrize("case", WEIGHTS, ids=list(WEIGHTS))
def test_forged_weights_are_refused_and_never_run(originals, tmp_path: Path, case: str) -> None:
    directory = _copy(originals, "teacher", tmp_path)
    marker = tmp_path / "code-ran"
    WEIGHTS[case](directory / "model.pt", marker)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(directory)
    assert info.value.path == str(directory / "model.pt") and not marker.exists()


DESCRIPTIONS = {
    "not JSON": ("{", "not a labctl checkpoint description"),
    "a list": ("[1, 2]", "not a labctl checkpoint description"),
    "no format": (json.dumps({"kind": "teacher", "config": {}}), "no \"format\""),
    "unknown kind": (json.dumps({"format": "labctl-checkpoint", "kind": "transformer", "config": {}}), "unknown model kind 'transformer'"),
    "config a list": (json.dumps({"format": "labctl-checkpoint", "kind": "teacher", "config": [1]}), "unknown model kind"),
    "config unknown setting": (json.dumps({"format": "labctl-checkpoint", "kind": "teacher", "config": {"task": "classification", "in_channels": 1, "size": 16, "num_classes": 10, "wings": 2}}), "config does not describe a teacher model"),
    "not UTF-8": (b"\xff\xfe{", "not a labctl checkpoint description"),
}


@pytest.mark.parametrize("case", DESCRIPTIONS, ids=list(DESCRIPTIONS))
def test_forged_description_is_named(originals, tmp_path: Path, case: str) -> None:
    directory = _copy(originals, "teacher", tmp_path)
    text, words = DESCRIPTIONS[case]
    meta = directory / "model.json"
    meta.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CheckpointError, match=words) as info:
        load_checkpoint(directory)
    assert info.value.path == str(meta)
