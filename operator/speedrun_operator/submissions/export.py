"""A run's results and the SpeedrunJob it was trained from, gathered into one leaderboard folder.

The results come from where the trainer wrote them (any fsspec URL or path), found either directly or through
a SpeedrunJob's ``status.results.resultsUrl`` on the API server. Nothing is written unless the results agree
with the config, so every exported folder passes ``speedrun validate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from speedrun_operator.api import InvalidSpeedrunJob, SpeedrunJob, parse_job
from speedrun_operator.contract import CONFIG_FILE, RESULTS_FILE, join
from speedrun_operator.storage import read_text, write_text_atomic
from speedrun_operator.submissions.consistency import check_results


class ExportError(Exception):
    """Why nothing was exported: one line per problem."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Submission:
    job: SpeedrunJob
    results_url: str
    results_text: str


def from_results(url: str) -> Submission:
    """From a results file, or the folder holding it, with the trainer's ``speedrun_job.yaml`` beside it."""
    results_url = url if url.endswith(".json") else join(url, RESULTS_FILE)
    folder = results_url.rpartition("/")[0] or "."
    config_url = join(folder, CONFIG_FILE)
    config_text = _read(config_url)
    try:
        job = parse_job(yaml.safe_load(config_text))
    except yaml.YAMLError as exc:
        raise ExportError([f"{config_url}: not valid YAML: {exc}"]) from None
    except InvalidSpeedrunJob as exc:
        raise ExportError([f"{config_url}: {error}" for error in exc.errors]) from None
    return Submission(job=job, results_url=results_url, results_text=_read(results_url))


def from_cluster(namespace: str, name: str) -> Submission:
    """From a SpeedrunJob on the API server: its spec, and the results its status points to."""
    where = f"{namespace}/{name}"
    job = _parse_stored(stored_job(namespace, name), where)
    results = job.status.results if job.status else None
    if results is None:
        phase = job.status.phase if job.status else "Pending"
        raise ExportError([f"{where}: no results yet (phase {phase}); export once it has succeeded"])
    return Submission(job=job, results_url=results.results_url, results_text=_read(results.results_url))


def stored_job(namespace: str, name: str) -> dict[str, Any]:
    """A SpeedrunJob as the API server holds it, through the user's kubeconfig; ExportError saying why not."""
    from urllib3.exceptions import HTTPError

    from speedrun_operator import kube
    from speedrun_operator.kube_client import ApiError, ConfigError, KubeApi

    where = f"{namespace}/{name}"
    try:
        found = kube.get_speedrunjob(KubeApi(kube.FIELD_MANAGER), namespace, name)
    except ConfigError as exc:
        raise ExportError([f"{where}: no Kubernetes configuration ({exc})"]) from None
    except ApiError as exc:
        raise ExportError([f"{where}: the API server answered {exc.status} {exc.reason}"]) from None
    except HTTPError as exc:
        raise ExportError([f"{where}: cannot reach the API server ({exc})"]) from None
    if found is None:
        raise ExportError([f"{where}: no such SpeedrunJob"])
    return found


def write(submission: Submission, destination: str) -> tuple[str, str]:
    """Write the SpeedrunJob and its results into ``destination``; return both URLs."""
    problems = check_results(submission.results_text, submission.job)
    if problems:
        raise ExportError([f"{submission.results_url}: {problem}" for problem in problems])
    config_url = join(destination, CONFIG_FILE)
    results_url = join(destination, RESULTS_FILE)
    write_text_atomic(config_url, yaml.safe_dump(submission.job.manifest(), sort_keys=False))
    write_text_atomic(results_url, submission.results_text)
    return config_url, results_url


def _parse_stored(found: dict[str, Any], where: str) -> SpeedrunJob:
    try:
        return parse_job(found)
    except InvalidSpeedrunJob as exc:
        raise ExportError([f"{where}: {error}" for error in exc.errors]) from None


def _read(url: str) -> str:
    try:
        return read_text(url)
    except FileNotFoundError:
        raise ExportError([f"{url}: not found"]) from None
    except (OSError, ValueError) as exc:
        raise ExportError([f"{url}: cannot read: {exc}"]) from None
