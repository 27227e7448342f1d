"""``labctl`` command line. Each command group lives in its own module and is added here."""

from __future__ import annotations

import click

from labctl.cli.bench import bench
from labctl.cli.calibrate import calibrate_command
from labctl.cli.demo import demo_command
from labctl.cli.devices import devices
from labctl.cli.efficiency import efficiency_command
from labctl.cli.evaluate import evaluate_command
from labctl.cli.finetune import finetune_command
from labctl.cli.report import report_command
from labctl.cli.run import export_masks_command, run_command
from labctl.cli.train import train_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labctl")
def main() -> None:
    """Run a 4f optical-computing bench: calibrate, load distilled masks, infer, record."""


main.add_command(bench)
main.add_command(export_masks_command)
main.add_command(run_command)
main.add_command(report_command)
main.add_command(calibrate_command)
main.add_command(devices)
main.add_command(finetune_command)
main.add_command(demo_command)
main.add_command(train_group)
main.add_command(evaluate_command)
main.add_command(efficiency_command)
