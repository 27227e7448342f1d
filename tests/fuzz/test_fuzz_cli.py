"""``labctl run`` / ``report`` / ``evaluate`` with options that cannot work: one line naming the file
or value, a nonzero exit, no traceback, and no record created or changed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from labctl.cli import main

CASES = {
    "out exists without --resume": (["run", "--out", "{run}"], "RUN.h5 exists; use --resume"),
    "--resume without a record": (["run", "--out", "{tmp}/NONE.h5", "--resume"], "no run file at"),
    "masks is a run record": (["run", "--masks", "{run}", "--out", "{tmp}/NEW.h5"], "not a labctl mask file"),
    "unknown data spec": (["run", "--data", "mnist", "--out", "{tmp}/NEW.h5"], "unknown data spec 'mnist'"),
    "data of another size": (["run", "--data", "digits", "--out", "{tmp}/NEW.h5", "--no-resize"], "made for 16x16-px images"),
    "resume with another limit": (["run", "--out", "{run}", "--resume", "--limit", "20"], "holds 48 inputs; this run has 20"),
    "student of another hash": (["run", "--out", "{tmp}/NEW.h5", "--student", "{other}"], "is not the model the masks were exported from"),
    "batch size 0": (["run", "--out", "{tmp}/NEW.h5", "--batch-size", "0"], "Invalid value for '--batch-size'"),
    "limit 0": (["run", "--out", "{tmp}/NEW.h5", "--limit", "0"], "Invalid value for '--limit'"),
    "report a directory": (["report", "{tmp}"], "is a directory"),
    "evaluate unknown spec": (["evaluate", "{student}", "--data", "idx"], "idx needs a directory"),
}


@pytest.fixture
def paths(trained, tmp_path: Path) -> dict[str, str]:
    import shutil

    run = tmp_path / "RUN.h5"
    run.write_bytes(trained.run.read_bytes())
    other = Path(shutil.copytree(trained.student.parent, tmp_path / "other"))  # same architecture, other weights
    state = torch.load(other / "model.pt", weights_only=True)
    torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, other / "model.pt")
    return {"run": str(run), "tmp": str(tmp_path), "student": str(trained.student.parent), "other": str(other),
            "bench": str(trained.bench_file), "masks": str(trained.masks)}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_cli_option_that_cannot_work_is_one_clear_line(paths: dict[str, str], case: str) -> None:
    args, words = CASES[case]
    args = [a.format(**paths) for a in args]
    if args[0] == "run":
        args += ["--bench", paths["bench"]] + ([] if "--masks" in args else ["--masks", paths["masks"]])
        args += [] if "--data" in args else ["--data", "digits"]
        args += [] if "--no-resize" in args else ["--resize"]
        args = [a for a in args if a != "--no-resize"]
    before = Path(paths["run"]).read_bytes()
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit), result.output
    assert words in result.output.replace("\n", " ") and "Traceback" not in result.output, result.output
    assert Path(paths["run"]).read_bytes() == before and not Path(paths["tmp"], "NEW.h5").exists()
