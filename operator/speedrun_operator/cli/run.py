"""``speedrun run FILE``: train a SpeedrunJob on this machine, no cluster needed."""

from __future__ import annotations

from pathlib import Path

import click

from speedrun_operator.cli.errors import exit_on_manifest_error
from speedrun_operator.manifests import load_job


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--output",
    metavar="DIR|URL",
    help="Where results and checkpoints go. Default: the file's output, else ./speedrun-output.",
)
def run(file: Path, output: str | None) -> None:
    """Train the SpeedrunJob in FILE here (a local Ray, the devices JAX sees) and write its results."""
    with exit_on_manifest_error():
        job = load_job(file)
    if job.spec.resources.cpu is None:
        click.echo(
            f"{job.name}: asks for {job.spec.resources.describe()}; training on the devices JAX sees here"
        )
    from speedrun_trainer.runner import configure_logging, train_job

    configure_logging()
    result = train_job(job, output=output, console=True, local_ray=True)
    click.echo(f"results: {result.results_url}")
