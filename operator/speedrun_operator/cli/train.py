"""``speedrun train FILE | --job NAMESPACE/NAME``: the trainer image's entry point."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from speedrun_operator import contract
from speedrun_operator.api import GROUP, PLURAL, VERSION, SpeedrunJob, parse_job
from speedrun_operator.cli.errors import exit_on_manifest_error
from speedrun_operator.cli.model_code import use_local_code
from speedrun_operator.kube_client import KubeApi, custom_path
from speedrun_operator.manifests import load_job

if TYPE_CHECKING:
    from speedrun_trainer.runner import TrainResult


@click.command()
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--job", "job_ref", metavar="NAMESPACE/NAME", help="Read the SpeedrunJob from the API server.")
@click.option("--output", metavar="URL", help="Output prefix. Default: the job's, else $SPEEDRUN_OUTPUT.")
@click.option(
    "--ray",
    "on_ray",
    is_flag=True,
    help="Run as a Ray job's driver: train on the cluster's worker hosts (what the operator's RayJobs do).",
)
def train(file: Path | None, job_ref: str | None, output: str | None, on_ray: bool) -> None:
    """Train a SpeedrunJob with Levanter, resuming from its latest checkpoint, and publish its results.

    Progress and results go onto the SpeedrunJob's status when SPEEDRUN_JOB_NAMESPACE/SPEEDRUN_JOB_NAME are
    set (or with --job).
    """
    if (file is None) == (job_ref is None):
        raise click.UsageError("give a FILE or --job NAMESPACE/NAME (one of them)")
    from speedrun_trainer.kept_log import kept_log
    from speedrun_trainer.runner import configure_logging, resolve_output, train_job
    from speedrun_trainer.status_reporter import JobRef, StatusReporter, kube_api
    from speedrun_trainer.step_log import new_attempt_id

    configure_logging()
    ref = _parse_ref(job_ref) if job_ref is not None else JobRef.from_env()
    api = kube_api() if ref is not None else None
    if file is not None:
        with exit_on_manifest_error():
            job = load_job(file)
        use_local_code(file, job)
    else:
        assert ref is not None and api is not None
        job = _read_job(api, ref.namespace, ref.name)

    attempt = new_attempt_id()
    layout = contract.OutputLayout(output=resolve_output(job, output), job=job.name)
    where = f"{job.namespace}/{job.name}"
    result: TrainResult | None = None
    if on_ray:
        from speedrun_trainer.ray_dispatch import train_on_workers

        with kept_log(layout.log(attempt, contract.DRIVER_LOG), where), _ends_on_broken_code(layout):
            result = train_on_workers(job, output, ref, attempt=attempt)
    else:
        status = StatusReporter(ref, api) if ref is not None and api is not None else None
        with kept_log(layout.log(attempt, contract.host_log(0)), where), _ends_on_broken_code(layout):
            result = train_job(job, output=output, status=status, attempt=attempt)
    if result is not None:
        click.echo(f"results: {result.results_url}")


@contextmanager
def _ends_on_broken_code(layout: contract.OutputLayout) -> Iterator[None]:
    """A model whose code is broken ends the attempt cleanly (exit code 0), its failure recorded at
    ``layout.failure``: a failed attempt would make KubeRay retry code that fails the same way every time,
    and the operator fails the job from the record instead, once."""
    from speedrun_trainer.model_code import CodeError

    try:
        yield
    except Exception as exc:
        cause = exc if isinstance(exc, CodeError) else getattr(exc, "cause", None)
        if not isinstance(cause, CodeError):
            raise
        click.echo(f"the model's code is broken: {cause} (recorded at {layout.failure})", err=True)


def _parse_ref(value: str) -> Any:
    from speedrun_trainer.status_reporter import JobRef

    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name:
        raise click.BadParameter("expected NAMESPACE/NAME", param_hint="--job")
    return JobRef(namespace, name)


def _read_job(api: KubeApi, namespace: str, name: str) -> SpeedrunJob:
    return parse_job(api.request("GET", custom_path(GROUP, VERSION, namespace, PLURAL, name)))
