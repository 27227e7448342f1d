"""``python -m labctl``: the ``labctl`` command, also what ``torchrun -m labctl`` starts in each process."""

from labctl.cli import main

main(prog_name="labctl")
