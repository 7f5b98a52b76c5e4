"""The ``speedrun`` command. Each subcommand lives in its own module and stays thin over the library."""

from __future__ import annotations

import importlib
from importlib.metadata import version

import click

from speedrun_operator import storage

COMMANDS = {
    "info": "info:info",
    "validate": "validate:validate",
    "crd": "crd:crd",
    "operator": "operator_cmd:operator",
    "run": "run:run",
    "train": "train:train",
    "export": "export:export",
    "logs": "logs:logs",
    "leaderboard": "leaderboard:leaderboard_command",
    "import": "import_cmd:import_command",
}
"""Each command, as ``module:function`` under speedrun_operator.cli."""


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or the help lists it): the operator's
    long-lived process keeps none of the other commands' code (4 MiB, rich among it)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, name = COMMANDS[cmd_name].split(":")
        command: click.Command = getattr(importlib.import_module(f"speedrun_operator.cli.{module}"), name)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("speedrun-operator"), prog_name="speedrun")
def main() -> None:
    """Run Marin speedruns: on this machine (speedrun run) or as Kubernetes SpeedrunJobs."""
    storage.configure_process()
