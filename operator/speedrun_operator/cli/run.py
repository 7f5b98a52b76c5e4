"""``speedrun run FILE``: train a SpeedrunJob on this machine, no cluster needed."""

from __future__ import annotations

from pathlib import Path

import click

from speedrun_operator import eval_sets
from speedrun_operator.cli.errors import exit_on_manifest_error
from speedrun_operator.manifests import load_job


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--output",
    metavar="DIR|URL",
    help="Where results and checkpoints go. Default: the file's output, else ./speedrun-output.",
)
@click.option(
    "--validation-set",
    "validation_sets",
    multiple=True,
    metavar="NAME=URL[,URL] | paloma/SUBSET",
    help="A validation set for a job that names none (repeat for several); replaces the default list, "
    f"${eval_sets.DEFAULT_VALIDATION_ENV} or else Paloma's c4_en (gated on the Hub: set HF_TOKEN).",
)
def run(file: Path, output: str | None, validation_sets: tuple[str, ...]) -> None:
    """Train the SpeedrunJob in FILE here (a local Ray, the devices JAX sees) and write its results."""
    try:
        defaults = eval_sets.parse_options(validation_sets) if validation_sets else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--validation-set") from None
    with exit_on_manifest_error():
        job = load_job(file)
    if job.spec.resources.cpu is None:
        click.echo(
            f"{job.name}: asks for {job.spec.resources.describe()}; training on the devices JAX sees here"
        )
    from speedrun_trainer.runner import configure_logging, train_job

    configure_logging()
    result = train_job(job, output=output, console=True, local_ray=True, default_validation=defaults)
    click.echo(f"results: {result.results_url}")
