"""Training on a Ray cluster's workers: what a RayJob's driver does for ``speedrun train --ray``, and what
``speedrun run`` does on one machine for CPU hosts standing in for a slice.

The driver runs on the Ray head, which has no accelerators. It places one task per worker host — each worker
pod advertises the custom Ray resource ``speedrun-worker: 1`` (see the operator's builders) — and every task
trains in its host's process; a multi-host slice gets one task per host, strictly spread, as JAX's
multi-host runtime expects. CPU hosts are told their JAX coordinator (``multihost.HostSlot``).

A slice trains as one: the first host to fail fails the attempt. The driver cancels the other hosts' tasks
at once rather than wait on processes that may be blocked in a collective with the lost one, and raises, so
the RayJob fails and KubeRay retries it on a new cluster, where every host resumes from the same checkpoint.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from speedrun_operator import contract, storage
from speedrun_operator.api import SpeedrunJob, parse_job
from speedrun_operator.eval_sets import ValidationSets
from speedrun_trainer.multihost import HostSlot, free_coordinator_address, slots
from speedrun_trainer.status_reporter import JobRef
from speedrun_trainer.step_log import new_attempt_id

if TYPE_CHECKING:
    from ray import ObjectRef

    from speedrun_trainer.runner import TrainResult

logger = logging.getLogger(__name__)


def train_on_workers(
    job: SpeedrunJob,
    output: str | None,
    report_to: JobRef | None,
    *,
    one_machine: bool = False,
    default_validation: ValidationSets | None = None,
    attempt: str | None = None,
) -> TrainResult:
    """Train on the worker hosts of the Ray cluster this process is connected to; return host 0's result.
    ``one_machine``: the hosts are this machine's local Ray, which advertises ``speedrun-worker`` once per
    host (``speedrun run``). Every host's task keeps its log and step records under ``attempt`` (default: a
    new one), the driver's own id."""
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    if not ray.is_initialized():
        ray.init(address="auto", log_to_driver=True)
    where = contract.placement(job.spec.resources)
    hosts = where.hosts
    bundle = where.ray_resources_per_host
    if one_machine:
        _check_local_hosts(hosts, ray.cluster_resources().get(contract.WORKER_RESOURCE, 0.0))
    group = placement_group([bundle] * hosts, strategy="PACK" if one_machine else "STRICT_SPREAD")
    ray.get(group.ready())

    def on_host(index: int) -> PlacementGroupSchedulingStrategy:
        return PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)

    host_slots: list[HostSlot | None] = [None] * hosts
    if where.cpu_hosts:
        probe = ray.remote(num_cpus=0, max_retries=0)(free_coordinator_address)
        coordinator: str = ray.get(probe.options(scheduling_strategy=on_host(0)).remote())
        host_slots = list(slots(coordinator, hosts))
        logger.info("[%s/%s] JAX coordinator at %s", job.namespace, job.name, coordinator)
    remote = ray.remote(
        num_cpus=0,
        num_gpus=bundle.get("GPU", 0.0),
        resources={contract.WORKER_RESOURCE: bundle[contract.WORKER_RESOURCE]},
        max_retries=0,
        # A fresh process per task: JAX's distributed state cannot be initialised twice in one process.
        max_calls=1,
    )(_train_on_this_host)
    attempt = attempt or new_attempt_id()
    manifest = {**job.manifest(), "metadata": {**job.manifest()["metadata"], "namespace": job.namespace}}
    logger.info("[%s/%s] training on %d worker host(s)", job.namespace, job.name, hosts)
    refs = [
        remote.options(scheduling_strategy=on_host(index)).remote(
            manifest, output, report_to, host_slots[index], default_validation, attempt, index
        )
        for index in range(hosts)
    ]
    results: list[TrainResult] = wait_for_every_host(refs, f"{job.namespace}/{job.name}")
    return results[0]


def wait_for_every_host(refs: list[ObjectRef[Any]], where: str) -> list[Any]:
    """Every host's result, in host order. The first host to fail fails them all at once: the others are
    cancelled (forcibly: a process blocked in a collective never sees a polite cancel), its error raised."""
    import ray

    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        try:
            ray.get(done[0])
        except Exception:
            logger.error(
                "[%s] host %d failed; cancelling the other %d host(s)",
                where,
                refs.index(done[0]),
                len(pending),
            )
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    return list(ray.get(refs))


def _check_local_hosts(hosts: int, advertised: float) -> None:
    if advertised < hosts:
        raise RuntimeError(
            f"the job has {hosts} CPU hosts but this machine's Ray advertises {contract.WORKER_RESOURCE} "
            f"{advertised:g} times; start it with resources={{'{contract.WORKER_RESOURCE}': {hosts}}}"
        )


def _train_on_this_host(
    manifest: dict[str, Any],
    output: str | None,
    report_to: JobRef | None,
    slot: HostSlot | None,
    default_validation: ValidationSets | None,
    attempt: str,
    index: int,
) -> TrainResult:
    # Runs inside a Ray worker process on a worker pod, with the pod's env (the job's secrets among it).
    from speedrun_trainer.kept_log import kept_log
    from speedrun_trainer.runner import configure_logging, resolve_output, train_job
    from speedrun_trainer.status_reporter import StatusReporter, kube_api

    configure_logging()
    storage.configure_process()
    job = parse_job(manifest)
    ref = report_to or JobRef.from_env()
    status = StatusReporter(ref, kube_api()) if ref is not None else None
    layout = contract.OutputLayout(output=resolve_output(job, output), job=job.name)
    with kept_log(layout.log(attempt, contract.host_log(index)), f"{job.namespace}/{job.name}"):
        return train_job(
            job,
            output=output,
            status=status,
            host=slot,
            default_validation=default_validation,
            attempt=attempt,
        )
