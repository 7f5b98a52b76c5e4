"""SpeedrunJob -> KubeRay RayJob (with its RayCluster spec). Pure: spec in, manifest out."""

from __future__ import annotations

import shlex
from typing import Any

from speedrun_operator.api import API_VERSION, KIND, SpeedrunJob
from speedrun_operator.builders.labels import KUEUE_QUEUE_LABEL, child_labels
from speedrun_operator.builders.names import rayjob_name
from speedrun_operator.builders.pods import pod_template
from speedrun_operator.builders.worker_groups import worker_group
from speedrun_operator.config import OperatorConfig

RAY_API_VERSION = "ray.io/v1"


def trainer_entrypoint(job: SpeedrunJob) -> str:
    """The Ray job's driver: the trainer, told which SpeedrunJob to read from the API server."""
    return shlex.join(["speedrun", "train", "--job", f"{job.namespace}/{job.name}", "--ray"])


def build_rayjob(job: SpeedrunJob, uid: str, config: OperatorConfig) -> dict[str, Any]:
    spec = job.spec
    labels = child_labels(job.name)
    if spec.queue_name:
        labels[KUEUE_QUEUE_LABEL] = spec.queue_name
    head = {
        "rayStartParams": {"dashboard-host": "0.0.0.0"},
        "template": pod_template(
            job,
            config,
            container_name="ray-head",
            resources={
                "requests": {"cpu": config.head_cpu, "memory": config.head_memory},
                "limits": {"cpu": config.head_cpu, "memory": config.head_memory},
            },
            node_selector={},
            tolerations=[],
        ),
    }
    rayjob_spec: dict[str, Any] = {
        "entrypoint": trainer_entrypoint(job),
        "submissionMode": config.submission_mode,
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": spec.ttl_seconds_after_finished,
        "backoffLimit": spec.backoff_limit,
        # Kueue admits a queued job by unsuspending it, so a queued job starts suspended.
        "suspend": spec.suspend or spec.queue_name is not None,
        "rayClusterSpec": {
            "rayVersion": config.ray_version,
            "headGroupSpec": head,
            "workerGroupSpecs": [worker_group(job, config)],
        },
    }
    if spec.active_deadline_seconds is not None:
        rayjob_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    return {
        "apiVersion": RAY_API_VERSION,
        "kind": "RayJob",
        "metadata": {
            "name": rayjob_name(job.name),
            "namespace": job.namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": KIND,
                    "name": job.name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": rayjob_spec,
    }
