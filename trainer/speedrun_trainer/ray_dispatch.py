"""Training on a Ray cluster's workers: what a RayJob's driver does for ``speedrun train --ray``.

The driver runs on the Ray head, which has no accelerators. It places one task per worker host — each worker
pod advertises the custom Ray resource ``speedrun-worker: 1`` (see the operator's builders) — and every task
trains in its host's process; a multi-host TPU slice gets one task per host, strictly spread, as JAX's
multi-host runtime expects.
"""

from __future__ import annotations

import logging
from typing import Any

from speedrun_operator import contract, storage
from speedrun_operator.api import SpeedrunJob, parse_job
from speedrun_trainer.status_reporter import JobRef

logger = logging.getLogger(__name__)


def train_on_workers(job: SpeedrunJob, output: str | None, report_to: JobRef | None) -> str:
    """Train on the workers of the Ray cluster this process is connected to; return the results URL."""
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    if not ray.is_initialized():
        ray.init(address="auto", log_to_driver=True)
    where = contract.placement(job.spec.resources)
    hosts = where.hosts
    bundle = where.ray_resources_per_host
    group = placement_group([bundle] * hosts, strategy="STRICT_SPREAD")
    ray.get(group.ready())
    remote = ray.remote(
        num_cpus=0,
        num_gpus=bundle.get("GPU", 0.0),
        resources={contract.WORKER_RESOURCE: bundle[contract.WORKER_RESOURCE]},
        max_retries=0,
    )(_train_on_this_host)
    manifest = {**job.manifest(), "metadata": {**job.manifest()["metadata"], "namespace": job.namespace}}
    logger.info("[%s/%s] training on %d worker host(s)", job.namespace, job.name, hosts)
    refs = [
        remote.options(
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)
        ).remote(manifest, output, report_to)
        for index in range(hosts)
    ]
    urls: list[str] = ray.get(refs)
    return urls[0]


def _train_on_this_host(manifest: dict[str, Any], output: str | None, report_to: JobRef | None) -> str:
    # Runs inside a Ray worker process on a worker pod, with the pod's env (the job's secrets among it).
    from speedrun_trainer.runner import configure_logging, train_job
    from speedrun_trainer.status_reporter import StatusReporter, custom_objects_api

    configure_logging()
    storage.configure_process()
    job = parse_job(manifest)
    ref = report_to or JobRef.from_env()
    status = StatusReporter(ref, custom_objects_api()) if ref is not None else None
    return train_job(job, output=output, status=status).results_url
