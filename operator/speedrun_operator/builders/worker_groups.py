"""The one Ray worker group a run needs, shaped by its accelerator (tables in data/accelerators.yaml)."""

from __future__ import annotations

import json
from typing import Any

from speedrun_operator import accelerators
from speedrun_operator.api import SpeedrunJob
from speedrun_operator.builders.pods import WORKER_RESOURCE, pod_template
from speedrun_operator.config import OperatorConfig

GKE_GPU_LABEL = "cloud.google.com/gke-accelerator"
GKE_TPU_LABEL = "cloud.google.com/gke-tpu-accelerator"
GKE_TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
GPU_RESOURCE = "nvidia.com/gpu"
TPU_RESOURCE = "google.com/tpu"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
TPU_TOLERATION = {"key": TPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}

# Host resources requested beside the accelerators (GKE's machine shapes leave room for system pods).
CPU_PER_GPU, MEMORY_GIB_PER_GPU = 8, 48
TPU_HOST_CPU, TPU_HOST_MEMORY_GIB = 24, 96
CPU_WORKER_MEMORY_GIB = 6


def worker_group(job: SpeedrunJob, config: OperatorConfig) -> dict[str, Any]:
    resources = job.spec.resources
    if resources.gpu is not None:
        gpu = accelerators.gpu_type(resources.gpu.type)
        count = resources.gpu.count
        selector = {GKE_GPU_LABEL: gpu.gke_accelerator} if gpu.gke_accelerator else {}
        return _group(
            job,
            config,
            name=f"gpu-{gpu.name.lower()}",
            replicas=1,
            hosts=1,
            limits={
                "cpu": str(CPU_PER_GPU * count),
                "memory": f"{MEMORY_GIB_PER_GPU * count}Gi",
                GPU_RESOURCE: str(count),
            },
            node_selector=selector,
            tolerations=[GPU_TOLERATION],
        )
    if resources.tpu is not None:
        shape = accelerators.tpu_slice(resources.tpu.type)
        return _group(
            job,
            config,
            name=f"tpu-{shape.name}",
            replicas=resources.tpu.slices,
            hosts=shape.hosts,
            limits={
                "cpu": str(TPU_HOST_CPU),
                "memory": f"{TPU_HOST_MEMORY_GIB}Gi",
                TPU_RESOURCE: str(shape.chips_per_host),
            },
            node_selector={GKE_TPU_LABEL: shape.gke_accelerator, GKE_TPU_TOPOLOGY_LABEL: shape.topology},
            tolerations=[TPU_TOLERATION],
        )
    cores = (resources.cpu.cores if resources.cpu else None) or 2
    return _group(
        job,
        config,
        name="cpu",
        replicas=1,
        hosts=1,
        limits={"cpu": str(cores), "memory": f"{CPU_WORKER_MEMORY_GIB}Gi"},
        node_selector={},
        tolerations=[],
    )


def _group(
    job: SpeedrunJob,
    config: OperatorConfig,
    *,
    name: str,
    replicas: int,
    hosts: int,
    limits: dict[str, str],
    node_selector: dict[str, str],
    tolerations: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "groupName": name,
        "replicas": replicas,
        "minReplicas": replicas,
        "maxReplicas": replicas,
        "numOfHosts": hosts,
        # Single-quoted JSON, as KubeRay itself writes it: KubeRay parses this to add the GPU/TPU resources of
        # the container's limits, and the shell passes it to `ray start --resources` unchanged.
        "rayStartParams": {"resources": f"'{json.dumps({WORKER_RESOURCE: 1})}'"},
        "template": pod_template(
            job,
            config,
            container_name="ray-worker",
            # Requests equal limits: the scheduler must find the whole host, and Ray sizes itself to limits.
            resources={"requests": dict(limits), "limits": dict(limits)},
            node_selector=node_selector,
            tolerations=tolerations,
        ),
    }
