"""Pieces shared by CLI commands: the --bench option and telling the operator's errors from bugs."""

from __future__ import annotations

import functools
import traceback
from pathlib import Path
from typing import Any, Callable

import click

from drivers.bench import BenchSpec
from drivers.errors import LabctlError

#: exit status of a command that met a bug (EX_SOFTWARE of sysexits.h); errors of input or devices exit 1
BUG_EXIT_STATUS = 70

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
    """labctl's own errors (bad input, a device that failed, a refused file) and files the system
    cannot read or write: one line and exit status 1. Anything else is a bug in labctl: its traceback,
    a line asking to report it, and exit status 70 — never a one-line message that hides it."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (LabctlError, OSError) as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception:
            click.echo(traceback.format_exc(), err=True, nl=False)
            click.echo(
                "This is a bug in labctl, not a problem with your input or bench: please report it with the "
                "traceback above and the command you ran.",
                err=True,
            )
            raise SystemExit(BUG_EXIT_STATUS) from None

    return wrapper
