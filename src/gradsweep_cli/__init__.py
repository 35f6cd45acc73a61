"""The ``gradsweep`` command's entry point: answers ``--help`` and ``--version`` without importing gradsweep.

``import gradsweep`` loads numba and xarray (about a second; it registers the ``ds.gradsweep`` accessor),
which every command needs and a question about the commands does not. Everything else goes to
:mod:`gradsweep.cli`. This lives outside the ``gradsweep`` package because importing any module of a
package imports the package first. ``tests/test_cli.py`` checks that the answers equal gradsweep.cli's.
"""

from __future__ import annotations

import sys
from importlib.metadata import version

import click

#: The first paragraph of each command's help in gradsweep.cli, which the top-level help lists.
COMMANDS = {
    "calibrate": "How often the intervals cover the exact values: the config run once per seed.",
    "demo": "The classic experiment: score vs pathwise for f(x) = x^2 at theta=2, sigma=1.",
    "extend": "Merge REPS more replicates into RESULT, in place (atomically).",
    "merge": "Combine the shard files SHARDS of one sweep into OUTPUT (identical to a single run).",
    "plot": "Plot variance against N, dim or k (simulated with 95% intervals, and exact), or a variance ratio heatmap.",
    "run": "Run the sweep described by CONFIG (TOML) and write it to OUTPUT.",
    "show": "Print a result: estimates beside exact values and intervals, as a table, CSV or JSON.",
}
#: gradsweep.cli.main's own help.
HELP = "Measure the variance of Monte Carlo gradient estimators at scale."
#: The command lines answered here.
QUICK = ([], ["-h"], ["--help"], ["--version"])


def overview() -> click.Group:
    """A group that shows what gradsweep.cli.main shows for ``--help`` and ``--version``, and runs nothing."""

    @click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(version("gradsweep"), prog_name="gradsweep")
    def main():
        pass

    for name, text in COMMANDS.items():
        main.add_command(click.Command(name, help=text))
    return main


def main(args: list[str] | None = None) -> None:
    args = sys.argv[1:] if args is None else args
    if args in QUICK:
        overview()(args, prog_name="gradsweep")
    from gradsweep.cli import main as commands

    commands(args, prog_name="gradsweep")
