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


SUBMITTER_CONTAINER = "ray-job-submitter"
SUBMITTER_RESOURCES = {
    "requests": {"cpu": "500m", "memory": "200Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
"""KubeRay's own defaults for its submitter."""


def submitter_pod_template(job: SpeedrunJob, config: OperatorConfig) -> dict[str, Any]:
    """The submitter of K8sJobMode, hardened like every pod of ours and placed where the head goes; KubeRay
    fills in its command and the dashboard's address."""
    template = pod_template(
        job,
        config,
        container_name=SUBMITTER_CONTAINER,
        resources=SUBMITTER_RESOURCES,
        node_selector={},
        tolerations=[],
    )
    template["spec"]["restartPolicy"] = "Never"
    return template


def head_group(job: SpeedrunJob, config: OperatorConfig) -> dict[str, Any]:
    """A small CPU head: the driver runs here and places the training on the workers."""
    requests = {"cpu": config.head_cpu, "memory": config.head_memory}
    return {
        "rayStartParams": {"dashboard-host": "0.0.0.0"},
        "template": pod_template(
            job,
            config,
            container_name="ray-head",
            resources={"requests": dict(requests), "limits": dict(requests)},
            node_selector={},
            tolerations=[],
        ),
    }


def build_rayjob(
    job: SpeedrunJob, uid: str, config: OperatorConfig, *, restricted: bool = False
) -> dict[str, Any]:
    """``restricted``: the namespace enforces Pod Security's restricted profile. KubeRay 1.5 gives the
    submitter it adds beside the head in SidecarMode no securityContext (nor a field to set one), so no such
    pod is admitted there; such a job is submitted in K8sJobMode, by a submitter pod of ours."""
    spec = job.spec
    labels = child_labels(job.name)
    if spec.queue_name and not spec.suspend:
        # A run suspended by its user joins its queue when resumed (status/edits.py: suspend_patches).
        labels[KUEUE_QUEUE_LABEL] = spec.queue_name
    rayjob_spec: dict[str, Any] = {
        "entrypoint": trainer_entrypoint(job),
        "submissionMode": "K8sJobMode" if restricted else config.submission_mode,
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": spec.ttl_seconds_after_finished,
        "backoffLimit": spec.backoff_limit,
        # Kueue admits a queued job by unsuspending it, so a queued job starts suspended.
        "suspend": spec.suspend or spec.queue_name is not None,
        "rayClusterSpec": {
            "rayVersion": config.ray_version,
            "headGroupSpec": head_group(job, config),
            "workerGroupSpecs": [worker_group(job, config)],
        },
    }
    if restricted:
        rayjob_spec["submitterPodTemplate"] = submitter_pod_template(job, config)
    if spec.active_deadline_seconds is not None:
        rayjob_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    owner = {"apiVersion": API_VERSION, "kind": KIND, "name": job.name, "uid": uid}
    return {
        "apiVersion": RAY_API_VERSION,
        "kind": "RayJob",
        "metadata": {
            "name": rayjob_name(job.name),
            "namespace": job.namespace,
            "labels": labels,
            "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": rayjob_spec,
    }
