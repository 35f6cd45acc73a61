"""``python -m gradsweep``: the same command line as ``gradsweep``."""

from .cli import main

main(prog_name="gradsweep")
