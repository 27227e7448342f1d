"""``labctl`` command line. Each command group lives in its own module and is added here."""

from __future__ import annotations

import click

from labctl.cli.bench import bench


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labctl")
def main() -> None:
    """Run a 4f optical-computing bench: calibrate, load distilled masks, infer, record."""


main.add_command(bench)
