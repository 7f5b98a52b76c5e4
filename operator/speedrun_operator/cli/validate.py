"""``speedrun validate FILE|DIR...``: check SpeedrunJob files and submission folders, one line per error.

A ``speedrun_results.json`` (found in a directory, or named) is checked against the SpeedrunJob beside it, or,
with none beside it (a Marin folder: the run's .py script and its results), against the model config, train
config and resources the file records: parameters, tokens and FLOPs recomputed from them must match what the
file claims."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from speedrun_operator.api import InvalidSpeedrunJob, parse_job
from speedrun_operator.cli.errors import EXIT_INVALID
from speedrun_operator.contract import RESULTS_FILE
from speedrun_operator.ladder.checks import listing_warning
from speedrun_operator.ladder.rungs import parse_ladder
from speedrun_operator.manifests import (
    ManifestError,
    iter_documents,
    looks_like_ladder,
    looks_like_speedrun_job,
)
from speedrun_operator.submissions import results_problems

_SUFFIXES = (".yaml", ".yml")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
def validate(paths: tuple[Path, ...]) -> None:
    """Check SpeedrunJob and SpeedrunLadder files, and speedrun_results.json files against the SpeedrunJob
    beside them or, with none, against the configs they record (Marin's own folders).

    A ladder is checked rung by rung (each rung merged over the base is a valid SpeedrunJob; rung names are
    folder names; three rungs at least), with a warning when no rung would pass the scaling board's listing
    threshold.

    Directories are searched for *.yaml, *.yml and speedrun_results.json; YAML files there that hold no
    SpeedrunJob (a kustomization, a Secret) are left alone. Exits 2 on any error."""
    checked = failed = 0
    for path, named in _files(paths):
        problems = _problems(path, named)
        if problems is None:
            continue
        checked += 1
        if problems:
            failed += 1
            for line in problems:
                click.echo(line, err=True)
    if failed:
        click.echo(f"{failed} of {checked} files invalid", err=True)
        raise SystemExit(EXIT_INVALID)
    click.echo(f"{checked} file{'s' if checked != 1 else ''} valid")


def _files(paths: Iterable[Path]) -> Iterable[tuple[Path, bool]]:
    """Each file to check, and whether the user named it (rather than it being found in a directory)."""
    for path in paths:
        if path.is_dir():
            found = (
                p
                for p in path.rglob("*")
                if (p.suffix in _SUFFIXES or p.name == RESULTS_FILE) and p.is_file()
            )
            yield from ((p, False) for p in sorted(found))
        else:
            yield path, True


def _problems(path: Path, named: bool) -> list[str] | None:
    """Error lines for ``path``; None for a YAML file found in a directory that holds no SpeedrunJob."""
    if path.suffix == ".json":
        return results_problems(path)
    try:
        documents = list(iter_documents(path))
    except ManifestError as exc:
        return [f"{exc.where}: {error}" for error in exc.errors]
    jobs = [doc for doc in documents if looks_like_speedrun_job(doc.data)]
    ladders = [doc for doc in documents if looks_like_ladder(doc.data)]
    if not jobs and not ladders:
        return (
            [f"{path}: kind: no SpeedrunJob in this file (each needs kind: SpeedrunJob)"] if named else None
        )
    lines: list[str] = []
    for document in ladders:
        try:
            _, rungs = parse_ladder(document.data)
        except InvalidSpeedrunJob as exc:
            lines.extend(f"{document.where}: {error}" for error in exc.errors)
            continue
        warning = listing_warning(rungs)
        if warning:
            click.echo(f"{document.where}: warning: {warning}", err=True)
    for document in jobs:
        try:
            parse_job(document.data)
        except InvalidSpeedrunJob as exc:
            lines.extend(f"{document.where}: {error}" for error in exc.errors)
    return lines
