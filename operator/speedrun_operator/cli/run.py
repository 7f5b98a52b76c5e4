"""``speedrun run FILE``: train a SpeedrunJob on this machine, no cluster needed."""

from __future__ import annotations

from pathlib import Path

import click

from speedrun_operator import eval_sets
from speedrun_operator.cli.errors import exit_on_manifest_error
from speedrun_operator.cli.ladder_run import run_ladder
from speedrun_operator.cli.model_code import use_local_code
from speedrun_operator.manifests import holds_ladder, load_job


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--output",
    metavar="DIR|URL",
    help="Where results and checkpoints go. Default: the file's output, else ./speedrun-output.",
)
@click.option("--verbose", is_flag=True, help="Show the libraries' output (the run's log file) as it comes.")
@click.option(
    "--validation-set",
    "validation_sets",
    multiple=True,
    metavar="NAME=URL[,URL] | paloma/SUBSET",
    help="A validation set for a job that names none (repeat for several); replaces the default list, "
    f"${eval_sets.DEFAULT_VALIDATION_ENV} or else Paloma's c4_en (gated on the Hub: set HF_TOKEN).",
)
def run(file: Path, output: str | None, verbose: bool, validation_sets: tuple[str, ...]) -> None:
    """Train the SpeedrunJob in FILE here (a local Ray, the devices JAX sees) and write its results.

    A SpeedrunLadder in FILE trains rung by rung into <output>/<ladder>/ (a rung with results already is
    kept), then prints the fit and writes the ladder's status beside the rungs (speedrun_ladder.yaml)."""
    try:
        defaults = eval_sets.parse_options(validation_sets) if validation_sets else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--validation-set") from None
    if holds_ladder(file):
        run_ladder(file, output, verbose, defaults)
        return
    with exit_on_manifest_error():
        job = load_job(file)
    use_local_code(file, job)
    from speedrun_trainer.console import console_session, start_ray
    from speedrun_trainer.runner import resolve_output, train_job

    with console_session(job, resolve_output(job, output), verbose=verbose) as session:
        start_ray(session)
        # local_ray=False: the session has started this machine's Ray, with its logging options.
        result = train_job(job, output=output, console=True, local_ray=False, default_validation=defaults)
        session.line(f"results: {result.results_url}")
        session.line(f"log: {session.log_path}")
