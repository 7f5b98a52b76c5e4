"""From what KubeRay reports on a RayJob to the SpeedrunJob's phase and conditions. Pure functions.

KubeRay's RayJob has no conditions, only ``jobDeploymentStatus`` (how the cluster and submission are doing)
and ``jobStatus`` (what the Ray job itself is doing); this module reads both and tells the story once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from speedrun_operator.api import ConditionType, Phase, SpeedrunJobStatus
from speedrun_operator.status.conditions import ConditionStatus, set_condition

TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED})


@dataclass(frozen=True)
class Transition:
    """A phase change worth a Kubernetes Event."""

    old: Phase
    new: Phase
    reason: str
    message: str

    @property
    def warning(self) -> bool:
        return self.new == Phase.FAILED


@dataclass
class Observation:
    status: SpeedrunJobStatus
    transition: Transition | None = None
    rayjob_succeeded: bool = False


def needs_resync(status: dict[str, Any]) -> bool:
    """Whether a SpeedrunJob (its status as stored) may still change: a Failed one, or a Succeeded one whose
    results are published, has nothing left to catch up on, so its resync timer can stop."""
    phase = status.get("phase")
    if phase == Phase.FAILED:
        return False
    if phase == Phase.SUCCEEDED:
        return not status.get("results")
    return True


def observe_rayjob(
    rayjob: dict[str, Any] | None,
    current: SpeedrunJobStatus,
    *,
    suspended_by_user: bool,
    queued: bool,
    generation: int | None,
    now: str,
) -> Observation:
    """The status a SpeedrunJob should have given its RayJob (None when it no longer exists)."""
    status = current.model_copy(deep=True)
    if current.phase in TERMINAL_PHASES:
        return Observation(status)
    if rayjob is None:
        _fail(
            status,
            "RayJobDeleted",
            f"RayJob {current.ray_job_name} was deleted outside the operator; it is not re-created behind "
            "your back. Delete and re-apply the SpeedrunJob to run again.",
            generation,
            now,
        )
        return _with_transition(current, status)

    ray_status: dict[str, Any] = rayjob.get("status") or {}
    deployment = ray_status.get("jobDeploymentStatus") or ""
    job_status = ray_status.get("jobStatus") or ""
    status.ray_cluster_name = ray_status.get("rayClusterName") or status.ray_cluster_name
    status.dashboard_url = ray_status.get("dashboardURL") or status.dashboard_url
    status.attempts = 1 + int(ray_status.get("failed") or 0) if ray_status else status.attempts
    reason, message = ray_status.get("reason") or "", ray_status.get("message") or ""

    if deployment == "Complete" and job_status == "SUCCEEDED":
        _set(
            status,
            Phase.SUCCEEDED,
            "Succeeded",
            "training finished; results are being published",
            [
                (ConditionType.RUNNING, "False", "Finished", "training finished"),
                (ConditionType.COMPLETE, "True", "Succeeded", "the Ray job succeeded"),
                (ConditionType.FAILED, "False", "Succeeded", ""),
            ],
            generation,
            now,
        )
        status.completion_time = status.completion_time or ray_status.get("endTime") or now
        return _with_transition(current, status, rayjob_succeeded=True)
    if deployment in {"Failed", "ValidationFailed"} or (
        deployment == "Complete" and job_status in {"FAILED", "STOPPED"}
    ):
        why = reason or (
            "ValidationFailed" if deployment == "ValidationFailed" else f"Job{job_status.title()}"
        )
        _fail(
            status,
            why,
            message or f"KubeRay reports the Ray job {job_status or deployment}",
            generation,
            now,
            completion=ray_status.get("endTime"),
        )
        return _with_transition(current, status)
    if (
        deployment in {"Suspending", "Suspended"}
        or suspended_by_user
        or (queued and deployment in {"", "New"})
    ):
        if queued and not suspended_by_user:
            _set(
                status,
                Phase.QUEUED,
                "WaitingForAdmission",
                "waiting for Kueue to admit the run",
                [],
                generation,
                now,
            )
        else:
            _set(
                status,
                Phase.SUSPENDED,
                "Suspended",
                "suspended: set spec.suspend to false to resume",
                [(ConditionType.RUNNING, "False", "Suspended", "the run is suspended")],
                generation,
                now,
            )
        return _with_transition(current, status)
    if deployment == "Running" and job_status == "RUNNING":
        _set(
            status,
            Phase.RUNNING,
            "Training",
            "the trainer is running on the Ray cluster",
            [
                (
                    ConditionType.CLUSTER_READY,
                    "True",
                    "ClusterReady",
                    f"Ray cluster {status.ray_cluster_name} is up",
                ),
                (ConditionType.RUNNING, "True", "Training", "the trainer is running"),
            ],
            generation,
            now,
        )
        return _with_transition(current, status)
    if deployment == "Running":
        _set(
            status,
            Phase.PROVISIONING,
            "Submitting",
            "the Ray cluster is up; submitting the trainer",
            [
                (
                    ConditionType.CLUSTER_READY,
                    "True",
                    "ClusterReady",
                    f"Ray cluster {status.ray_cluster_name} is up",
                )
            ],
            generation,
            now,
        )
        return _with_transition(current, status)
    if deployment == "Retrying":
        _set(
            status,
            Phase.PROVISIONING,
            "Retrying",
            f"attempt {status.attempts} failed ({reason or 'no reason given'}); retrying on a new Ray "
            "cluster, resuming from the latest checkpoint",
            [
                (ConditionType.CLUSTER_READY, "False", "Retrying", message or "starting a new Ray cluster"),
                (ConditionType.RUNNING, "False", "Retrying", "waiting for the new cluster"),
            ],
            generation,
            now,
        )
        return _with_transition(current, status)
    _set(
        status,
        Phase.PROVISIONING,
        "ClusterStarting",
        "waiting for the Ray cluster's pods to be scheduled and ready",
        [(ConditionType.CLUSTER_READY, "False", "ClusterStarting", "Ray head and workers are starting")],
        generation,
        now,
    )
    return _with_transition(current, status)


def _set(
    status: SpeedrunJobStatus,
    phase: Phase,
    reason: str,
    message: str,
    conditions: list[tuple[ConditionType, ConditionStatus, str, str]],
    generation: int | None,
    now: str,
) -> None:
    status.phase, status.reason, status.message = phase, reason, message
    for type_, value, why, text in conditions:
        status.conditions = set_condition(
            status.conditions, type_, value, why, text, now=now, generation=generation
        )


def _fail(
    status: SpeedrunJobStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
    completion: str | None = None,
) -> None:
    _set(
        status,
        Phase.FAILED,
        reason,
        message,
        [
            (ConditionType.RUNNING, "False", reason, message),
            (ConditionType.COMPLETE, "False", reason, message),
            (ConditionType.FAILED, "True", reason, message),
        ],
        generation,
        now,
    )
    status.completion_time = status.completion_time or completion or now


def _with_transition(
    current: SpeedrunJobStatus, status: SpeedrunJobStatus, *, rayjob_succeeded: bool = False
) -> Observation:
    transition = None
    if status.phase != current.phase or status.reason != current.reason:
        transition = Transition(current.phase, status.phase, status.reason or "", status.message or "")
    return Observation(status, transition, rayjob_succeeded)
