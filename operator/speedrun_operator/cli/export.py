"""``speedrun export JOB|RESULTS_URL DIR``: a leaderboard submission folder from a finished run."""

from __future__ import annotations

import re
from pathlib import Path

import click

from speedrun_operator.cli.errors import EXIT_INVALID
from speedrun_operator.submissions import export as submissions
from speedrun_operator.submissions import ladder_export

_JOB = re.compile(r"^(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?)/(?P<name>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$")


@click.command()
@click.argument("source")
@click.argument("destination", metavar="DIR")
def export(source: str, destination: str) -> None:
    """Export a finished run as a leaderboard folder.

    DIR gets the SpeedrunJob (speedrun_job.yaml) and its speedrun_results.json, once checked to agree.

    SOURCE is NAMESPACE/NAME of a SpeedrunJob on the API server (its status.results.resultsUrl is read), or a
    results URL or path (gs://, file://, a local path): the speedrun_results.json or the folder holding it.

    A SpeedrunLadder (NAMESPACE/NAME of one, or its output folder <output>/<ladder>) is exported as its
    scaling group: DIR/<ladder>/ gets one such folder per rung, each checked; `speedrun leaderboard DIR`
    ranks it as a group.
    """
    try:
        ladder = (
            ladder_export.from_cluster(match["namespace"], match["name"])
            if (match := job_reference(source))
            else (ladder_export.from_folder(source) if ladder_export.is_ladder_folder(source) else None)
        )
        if ladder is not None:
            written = ladder_export.write(ladder, destination)
            click.echo(f"wrote {len(written)} rungs of {ladder.name}: " + ", ".join(written))
            return
        submission = (
            submissions.from_cluster(match["namespace"], match["name"])
            if (match := job_reference(source))
            else submissions.from_results(source)
        )
        config_url, results_url = submissions.write(submission, destination)
    except submissions.ExportError as exc:
        for line in exc.lines:
            click.echo(line, err=True)
        raise SystemExit(EXIT_INVALID) from None
    click.echo(f"wrote {config_url} and {results_url} (from {submission.results_url})")


def job_reference(source: str) -> re.Match[str] | None:
    """NAMESPACE/NAME, unless it names something on this machine or carries a scheme."""
    if "://" in source or Path(source).exists():
        return None
    return _JOB.match(source)
