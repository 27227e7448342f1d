"""The layers import downwards only: drivers ← calibration ← labctl, the optics model needs no
device, and mask files need no runner. Read from the source with ``ast`` (nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(folder: str) -> dict[str, set[str]]:
    """Module file → the modules it imports (at any depth: function-local imports count too)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    "folder, forbidden",
    [
        ("drivers", ("calibration", "labctl")),
        ("calibration", ("labctl",)),
        ("labctl/optics", ("drivers", "mock_hw", "calibration")),
        ("labctl/masks", ("labctl.runner", "mock_hw")),
    ],
)
def test_no_upward_imports(folder: str, forbidden: tuple[str, ...]) -> None:
    bad = {
        module: sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden))
        for module, names in imported_modules(folder).items()
    }
    assert {m: n for m, n in bad.items() if n} == {}


def test_the_checker_sees_function_local_imports(tmp_path: Path) -> None:
    names = set()
    for node in ast.walk(ast.parse("def f():\n    from calibration.active import x\n")):
        if isinstance(node, ast.ImportFrom):
            names.add(node.module)
    assert names == {"calibration.active"}
