"""Pieces shared by CLI commands: the --bench option and turning domain errors into clean exits."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import click

from drivers.bench import BenchSpec
from drivers.errors import BenchFileError, DeviceError
from labctl.records.run_record import RunRecordError

bench_option = click.option(
    "--bench",
    "bench_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Bench description file (TOML). Default: the embedded simulated bench.",
)


def load_bench_spec(bench_file: Path | None) -> BenchSpec:
    return BenchSpec.default() if bench_file is None else BenchSpec.from_file(bench_file)


def clean_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Report device and input errors as one readable line and exit status 2, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (BenchFileError, DeviceError, RunRecordError, FileNotFoundError, ValueError) as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc

    return wrapper
