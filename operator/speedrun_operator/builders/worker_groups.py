"""The one Ray worker group a run needs, shaped by its placement (``contract.placement``)."""

from __future__ import annotations

import json
from typing import Any

from speedrun_operator import contract
from speedrun_operator.api import SpeedrunJob
from speedrun_operator.builders.pods import pod_template
from speedrun_operator.config import OperatorConfig

# Host resources requested beside the accelerators (GKE's machine shapes leave room for system pods).
CPU_PER_GPU, MEMORY_GIB_PER_GPU = 8, 48
TPU_HOST_CPU, TPU_HOST_MEMORY_GIB = 24, 96
CPU_WORKER_MEMORY_GIB = 6
CPU_WORKER_DEFAULT_CORES = 2


def host_limits(job: SpeedrunJob, where: contract.Placement) -> dict[str, str]:
    """What one worker pod asks for: its accelerators and the host CPU and memory beside them."""
    if where.kind == "gpu":
        count = where.chips_per_host
        limits = {"cpu": str(CPU_PER_GPU * count), "memory": f"{MEMORY_GIB_PER_GPU * count}Gi"}
    elif where.kind == "tpu":
        limits = {"cpu": str(TPU_HOST_CPU), "memory": f"{TPU_HOST_MEMORY_GIB}Gi"}
    else:
        cpu = job.spec.resources.cpu
        cores = (cpu.cores if cpu else None) or CPU_WORKER_DEFAULT_CORES
        limits = {"cpu": str(cores), "memory": f"{CPU_WORKER_MEMORY_GIB}Gi"}
    if where.accelerator_resource is not None:
        limits[where.accelerator_resource] = str(where.chips_per_host)
    return limits


def worker_group(job: SpeedrunJob, config: OperatorConfig) -> dict[str, Any]:
    where = contract.placement(job.spec.resources)
    limits = host_limits(job, where)
    requests = dict(limits)
    if where.kind == "cpu" and config.cpu_worker_request is not None:
        requests["cpu"] = config.cpu_worker_request
    return {
        "groupName": where.group_name,
        "replicas": where.replicas,
        "minReplicas": where.replicas,
        "maxReplicas": where.replicas,
        "numOfHosts": where.hosts_per_replica,
        # Single-quoted JSON, as KubeRay itself writes it: KubeRay parses this to add the GPU/TPU resources of
        # the container's limits, and the shell passes it to `ray start --resources` unchanged.
        "rayStartParams": {"resources": f"'{json.dumps({contract.WORKER_RESOURCE: 1})}'"},
        "template": pod_template(
            job,
            config,
            container_name="ray-worker",
            # Requests equal limits: the scheduler must find the whole host, and Ray sizes itself to limits.
            resources={"requests": requests, "limits": dict(limits)},
            node_selector=where.node_selector,
            tolerations=where.tolerations,
        ),
    }
