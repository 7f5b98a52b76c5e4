"""``speedrun logs JOB|FOLDER|URL``: the log a run's trainer kept under its output, cluster gone or not."""

from __future__ import annotations

import time
from collections.abc import Callable

import click

from speedrun_operator import contract, run_logs
from speedrun_operator.api import Phase
from speedrun_operator.cli.errors import EXIT_INVALID
from speedrun_operator.cli.export import job_reference
from speedrun_operator.submissions.export import ExportError, stored_job

FOLLOW_SECONDS = 5.0


@click.command()
@click.argument("source")
@click.option(
    "--attempt", metavar="ID|N", help="Which attempt: its id, or its number from 1. Default: the newest."
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job has finished.")
@click.option(
    "--interval", default=FOLLOW_SECONDS, show_default=True, help="Seconds between looks with --follow."
)
def logs(source: str, attempt: str | None, follow: bool, interval: float) -> None:
    """Print the log a run's trainer kept: every process of one attempt (the Ray driver, then each worker
    host), each under a header naming its attempt and process.

    SOURCE is NAMESPACE/NAME of a SpeedrunJob on the API server (its status.logsUrl is read; KUBECONFIG as
    for kubectl), or a run's output folder <output>/<job> (a path or any fsspec URL: gs://, s3://, file://),
    or its logs folder. With --follow a SpeedrunJob is followed until it has succeeded or failed, a folder
    until its results are written (or Ctrl-C).
    """
    try:
        if (match := job_reference(source)) is not None:
            logs_url, finished = _from_cluster(match["namespace"], match["name"], wait=follow)
        else:
            logs_url = run_logs.logs_folder(source)
            results = contract.join(logs_url.removesuffix("/logs"), contract.RESULTS_FILE)
            finished = lambda: _exists(results)  # noqa: E731
        _print(logs_url, attempt, follow=follow, finished=finished, interval=interval)
    except (run_logs.LogsError, ExportError) as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_INVALID) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def _from_cluster(namespace: str, name: str, *, wait: bool) -> tuple[str, Callable[[], bool]]:
    """The job's logs location from its status, and whether it has finished (read again at each call)."""

    def status() -> dict[str, str]:
        found = stored_job(namespace, name).get("status") or {}
        return {key: value for key, value in found.items() if isinstance(value, str)}

    def finished() -> bool:
        return Phase(status().get("phase", Phase.PENDING)).terminal

    current = status()
    while not current.get("logsUrl"):
        phase = current.get("phase", Phase.PENDING)
        if not wait or Phase(phase).terminal:
            raise run_logs.LogsError(
                f"{namespace}/{name}: no logs location in its status yet (phase {phase})"
            )
        time.sleep(FOLLOW_SECONDS)
        current = status()
    return str(current["logsUrl"]), finished


def _print(
    logs_url: str,
    wanted: str | None,
    *,
    follow: bool,
    finished: Callable[[], bool],
    interval: float,
) -> None:
    """The chosen attempt's files, each under a header when its lines start or resume; following, new
    lines as they are kept, a newer attempt's files as it starts (unless --attempt names one)."""
    reader = run_logs.Reader()
    last: str | None = None
    at_line_start = True
    while True:
        done = follow and finished()  # read before the files, so nothing kept before the end is missed
        found = run_logs.attempts(logs_url)
        if found or not follow:
            chosen = run_logs.choose(found, wanted, logs_url)
            for file in found[chosen]:
                text = reader.new_text(file)
                if not text:
                    continue
                if file.url != last:
                    if not at_line_start:
                        click.echo()
                    number = list(found).index(chosen) + 1
                    click.echo(
                        f"==> attempt {number} of {len(found)} ({chosen}), {file.process}: {file.url} <=="
                    )
                    last = file.url
                click.echo(text, nl=False)
                at_line_start = text.endswith("\n")
        if not follow or done:
            return
        time.sleep(interval)


def _exists(url: str) -> bool:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(url)
    fs.invalidate_cache(path)
    try:
        return bool(fs.exists(path))
    except OSError:
        return False
