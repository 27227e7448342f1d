"""The CLI tells the operator's errors from bugs: labctl's own errors are one line and exit 1,
anything else is a traceback, a line asking to report it, and exit 70."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import click
import pytest
from click.testing import CliRunner

import calibration
import drivers
import labctl
from drivers.errors import DeviceTimeout, LabctlError
from labctl.cli.common import BUG_EXIT_STATUS, clean_errors
from labctl.data.errors import DataFileError


def _command(error: BaseException) -> click.Command:
    @click.command()
    @clean_errors
    def fails() -> None:
        raise error

    return fails


@pytest.mark.parametrize("error", [DeviceTimeout("camera", "no frame within 2 s"), DataFileError("/data/x.idx", "truncated"),
                                   FileNotFoundError(2, "No such file or directory", "/nope.toml")])
def test_labctl_errors_and_unreadable_files_are_one_line_and_exit_1(error: Exception) -> None:
    result = CliRunner().invoke(_command(error))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {type(error).__name__}: ") and "Traceback" not in result.output


@pytest.mark.parametrize("error", [ValueError("operands could not be broadcast"), KeyError("history"), ZeroDivisionError()])
def test_any_other_exception_is_a_bug_with_its_traceback(error: Exception) -> None:
    result = CliRunner().invoke(_command(error))
    assert result.exit_code == BUG_EXIT_STATUS
    assert "Traceback (most recent call last)" in result.output and type(error).__name__ in result.output
    assert "This is a bug in labctl" in result.output


def test_click_usage_errors_pass_through() -> None:
    result = CliRunner().invoke(_command(click.BadParameter("--sizes must be integers")))
    assert result.exit_code == 2 and "--sizes must be integers" in result.output


def _exception_classes() -> list[type]:
    found = []
    for package in (drivers, calibration, labctl):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith(".__main__"):
                continue  # running it is the command line itself
            module = importlib.import_module(info.name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, Exception) and not issubclass(obj, Warning) and obj.__module__ == module.__name__:
                    found.append(obj)
    return found


def test_every_exception_labctl_defines_shares_one_base() -> None:
    classes = _exception_classes()
    assert len(classes) > 25  # the device, calibration, data, model, mask, record and runner errors
    outside = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, LabctlError)]
    assert outside == []
