"""Training on a Ray cluster's workers: what a RayJob's driver does for ``speedrun train --ray``.

The driver runs on the Ray head, which has no accelerators. It places one task per worker host — each worker
pod advertises the custom Ray resource ``speedrun-worker: 1`` (see the operator's builders) — and every task
trains in its host's process; a multi-host TPU slice gets one task per host, strictly spread, as JAX's
multi-host runtime expects.
"""

from __future__ import annotations

import logging
from typing import Any

from speedrun_operator import accelerators
from speedrun_operator.api import SpeedrunJob, parse_job
from speedrun_operator.builders.pods import WORKER_RESOURCE
from speedrun_trainer.status_reporter import JobRef

logger = logging.getLogger(__name__)


def hosts_for(job: SpeedrunJob) -> int:
    """Worker hosts of the run: every host of every TPU slice, else one."""
    tpu = job.spec.resources.tpu
    return accelerators.tpu_slice(tpu.type).hosts * tpu.slices if tpu is not None else 1


def host_bundle(job: SpeedrunJob) -> dict[str, float]:
    """Ray resources one host's training task holds: the host itself and its GPUs.

    No CPU: Levanter's cache writers and tokenizers are Ray tasks that need the host's CPUs while the
    training task waits for them; holding one would starve a one-core worker.
    """
    gpu = job.spec.resources.gpu
    bundle = {WORKER_RESOURCE: 1.0}
    if gpu is not None:
        bundle["GPU"] = float(gpu.count)
    return bundle


def train_on_workers(job: SpeedrunJob, output: str | None, report_to: JobRef | None) -> str:
    """Train on the workers of the Ray cluster this process is connected to; return the results URL."""
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    if not ray.is_initialized():
        ray.init(address="auto", log_to_driver=True)
    hosts = hosts_for(job)
    bundle = host_bundle(job)
    group = placement_group([bundle] * hosts, strategy="STRICT_SPREAD")
    ray.get(group.ready())
    remote = ray.remote(
        num_cpus=0,
        num_gpus=bundle.get("GPU", 0.0),
        resources={WORKER_RESOURCE: bundle[WORKER_RESOURCE]},
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
    job = parse_job(manifest)
    ref = report_to or JobRef.from_env()
    status = StatusReporter(ref, custom_objects_api()) if ref is not None else None
    return train_job(job, output=output, status=status).results_url
