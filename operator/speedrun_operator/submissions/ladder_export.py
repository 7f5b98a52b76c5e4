"""A finished SpeedrunLadder as one scaling-track submission: the group folder ``<DIR>/<ladder>/`` holding one
checked run folder per rung (``<ladder>-<rung>/``: its SpeedrunJob and results), as the ladder's own output
folder already holds them. ``speedrun leaderboard DIR`` then ranks the ladder as one group.

The rungs come from a SpeedrunLadder on the API server (each rung's SpeedrunJob, through its status), or
from the ladder's output folder (each subfolder holding a speedrun_results.json).
"""

from __future__ import annotations

from dataclasses import dataclass

import fsspec

from speedrun_operator.api import InvalidSpeedrunJob
from speedrun_operator.api.ladder import WAITING
from speedrun_operator.contract import RESULTS_FILE, join
from speedrun_operator.ladder.rungs import parse_ladder
from speedrun_operator.reconcile_ladder import stored_ladder_status
from speedrun_operator.submissions import export
from speedrun_operator.submissions.consistency import check_results
from speedrun_operator.submissions.export import ExportError, Submission


@dataclass(frozen=True)
class LadderSubmission:
    name: str
    """The group folder's name: the ladder's."""
    runs: list[tuple[str, Submission]]
    """Each rung's run folder name and its submission."""


def is_ladder_folder(url: str) -> bool:
    """A folder with no results of its own whose subfolders hold results: a ladder's output folder."""
    fs, path = fsspec.core.url_to_fs(url)
    path = path.rstrip("/")
    return not fs.exists(f"{path}/{RESULTS_FILE}") and bool(fs.glob(f"{path}/*/{RESULTS_FILE}"))


def from_folder(url: str) -> LadderSubmission:
    fs, path = fsspec.core.url_to_fs(url)
    path = path.rstrip("/")
    folders = sorted(found.rsplit("/", 2)[-2] for found in fs.glob(f"{path}/*/{RESULTS_FILE}"))
    name = path.rsplit("/", 1)[-1]
    return LadderSubmission(name, [(folder, export.from_results(join(url, folder))) for folder in folders])


def from_cluster(namespace: str, name: str) -> LadderSubmission | None:
    """The ladder of that name on the API server with each rung's submission; None when there is none.
    Raises ExportError while a rung has no results."""
    from urllib3.exceptions import HTTPError

    from speedrun_operator import kube
    from speedrun_operator.kube_client import ApiError, ConfigError, KubeApi

    where = f"{namespace}/{name}"
    try:
        found = kube.SPEEDRUNLADDER.get(KubeApi(kube.FIELD_MANAGER), namespace, name)
    except ConfigError as exc:
        raise ExportError([f"{where}: no Kubernetes configuration ({exc})"]) from None
    except ApiError as exc:
        raise ExportError([f"{where}: the API server answered {exc.status} {exc.reason}"]) from None
    except HTTPError as exc:
        raise ExportError([f"{where}: cannot reach the API server ({exc})"]) from None
    if found is None:
        return None
    try:
        ladder, rungs = parse_ladder(found)
    except InvalidSpeedrunJob as exc:
        raise ExportError([f"{where}: {error}" for error in exc.errors]) from None
    status = stored_ladder_status(found)
    phases = {rung.name: rung.phase for rung in status.rungs}
    done = {rung.name for rung in status.rungs if rung.results_url}
    pending = [f"{rung.name} ({phases.get(rung.name, WAITING)})" for rung in rungs if rung.name not in done]
    if pending:
        missing = ", ".join(pending)
        raise ExportError([f"{where}: no results yet for {missing}; export once the ladder has succeeded"])
    runs = [(rung.job.name, export.from_cluster(namespace, rung.job.name)) for rung in rungs]
    return LadderSubmission(ladder.name, runs)


def write(submission: LadderSubmission, destination: str) -> list[str]:
    """Every rung's folder under ``<destination>/<ladder>/``, each checked before anything is written."""
    problems = [
        f"{run.results_url}: {problem}"
        for _, run in submission.runs
        for problem in check_results(run.results_text, run.job)
    ]
    if problems:
        raise ExportError(problems)
    group = join(destination, submission.name)
    return [export.write(run, join(group, folder))[1] for folder, run in submission.runs]
