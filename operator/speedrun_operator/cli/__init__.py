"""The ``speedrun`` command. Each subcommand lives in its own module and stays thin over the library."""

from __future__ import annotations

from importlib.metadata import version

import click

from speedrun_operator import storage
from speedrun_operator.cli import (
    crd,
    export,
    import_cmd,
    info,
    leaderboard,
    logs,
    operator_cmd,
    run,
    train,
    validate,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("speedrun-operator"), prog_name="speedrun")
def main() -> None:
    """Run Marin speedruns: on this machine (speedrun run) or as Kubernetes SpeedrunJobs."""
    storage.configure_process()


main.add_command(info.info)
main.add_command(validate.validate)
main.add_command(crd.crd)
main.add_command(operator_cmd.operator)
main.add_command(run.run)
main.add_command(train.train)
main.add_command(export.export)
main.add_command(logs.logs)
main.add_command(leaderboard.leaderboard_command)
main.add_command(import_cmd.import_command)
