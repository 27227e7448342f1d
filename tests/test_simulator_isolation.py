"""The simulator stays a device: nothing outside tests/, benchmarks/ and mock_hw/ imports ``mock_hw`` or
reads a simulated device's hidden truth. Read from the source with ``ast`` (nothing is imported).

The legitimate references are listed, each with why: the driver registry names the mock classes as
strings (a bench file picks them like any other driver), and the embedded default bench file is read
as package data from ``mock_hw``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED_FOLDERS = ("tests", "benchmarks", "mock_hw")
SKIPPED_FOLDERS = (".venv", "build", "dist")
#: (file, string constant) pairs that may name mock_hw, and why
ALLOWED_REFERENCES = {
    ("drivers/registry.py", "mock_hw.slm:MockSLM"): "the registry's name table (resolved only when a bench file asks)",
    ("drivers/registry.py", "mock_hw.camera:MockCamera"): "the registry's name table",
    ("drivers/registry.py", "mock_hw.instruments:MockShutter"): "the registry's name table",
    ("drivers/registry.py", "mock_hw.instruments:MockPowerMeter"): "the registry's name table",
    ("drivers/bench.py", "mock_hw"): "reads the embedded default_bench.toml as package data",
    ("calibration/run.py", "mock_hw"): "reads the embedded default_bench.toml as package data",
}
#: files that import modules named at run time, and why that cannot reach mock_hw beyond the above
ALLOWED_RUNTIME_IMPORTS = {
    "drivers/registry.py": "resolves the registry's name table (whose mock_hw entries are listed above)",
    "drivers/slmsuite_common.py": "loads slmsuite classes from its own table of slmsuite models",
}
TRUTH_NAMES = {"_truth", "reveal_truth"}
IMPORTERS = {"import_module", "__import__"}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the constant nodes that are docstrings (prose may mention mock_hw)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def _names_mock_hw(name: str) -> bool:
    return name == "mock_hw" or name.startswith(("mock_hw.", "mock_hw:"))


def violations(source: str, path: str) -> list[str]:
    """What in ``source`` (the file ``path``, relative to the repository) reaches into the simulator."""
    tree = ast.parse(source, path)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [f"{path}:{line} imports {a.name}" for a in node.names if _names_mock_hw(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and _names_mock_hw(node.module):
            found.append(f"{path}:{line} imports from {node.module}")
        elif isinstance(node, ast.ImportFrom) and any(a.name in TRUTH_NAMES for a in node.names):
            found.append(f"{path}:{line} imports a truth accessor from {node.module}")
        elif isinstance(node, ast.Attribute) and node.attr in TRUTH_NAMES:
            found.append(f"{path}:{line} reads .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in TRUTH_NAMES:
            found.append(f"{path}:{line} uses {node.id}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if node.value in TRUTH_NAMES:
                found.append(f"{path}:{line} names {node.value!r}")
            elif _names_mock_hw(node.value) and (path, node.value) not in ALLOWED_REFERENCES:
                found.append(f"{path}:{line} names {node.value!r}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            dynamic = node.args and not isinstance(node.args[0], ast.Constant)
            if name in IMPORTERS and dynamic and path not in ALLOWED_RUNTIME_IMPORTS:
                found.append(f"{path}:{line} imports a module named at run time ({name}); name it as a constant")
    return found


def _sources() -> list[Path]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ALLOWED_FOLDERS or rel.parts[0] in SKIPPED_FOLDERS or rel.parts[0].endswith(".egg-info"):
            continue
        out.append(path)
    return out


def test_nothing_outside_tests_benchmarks_and_mock_hw_reaches_into_the_simulator() -> None:
    sources = _sources()
    assert any(p.relative_to(ROOT).parts[0] == "labctl" for p in sources)  # the walk sees the packages
    found = [v for path in sources for v in violations(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []


def test_every_allowed_reference_still_exists() -> None:
    """A stale exception would let a later violation through unnoticed."""
    for path, constant in ALLOWED_REFERENCES:
        tree = ast.parse((ROOT / path).read_text())
        assert any(isinstance(n, ast.Constant) and n.value == constant for n in ast.walk(tree)), (path, constant)


def test_the_checker_sees_each_kind_of_reach() -> None:
    cases = {
        "import mock_hw.camera\n": "imports mock_hw.camera",
        "def f():\n    from mock_hw.truth import reveal_truth\n": "imports from mock_hw.truth",
        "from somewhere import reveal_truth\n": "truth accessor",
        "x = device._truth.pose\n": "reads ._truth",
        "x = getattr(device, '_truth')\n": "names '_truth'",
        "import importlib\nm = importlib.import_module('mock_hw.slm')\n": "names 'mock_hw.slm'",
        "import importlib\nm = importlib.import_module(name)\n": "named at run time",
        "DRIVER = 'mock_hw.slm:MockSLM'\n": "names 'mock_hw.slm:MockSLM'",
    }
    for source, expected in cases.items():
        found = violations(source, "labctl/example.py")
        assert len(found) >= 1 and any(expected in v for v in found), (source, found)
    assert violations('"""Runs on mock_hw and reads reveal_truth in its docs only."""\n', "labctl/example.py") == []
