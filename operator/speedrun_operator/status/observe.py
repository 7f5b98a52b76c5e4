"""From what KubeRay reports on a RayJob to the SpeedrunJob's phase and conditions. Pure functions.

KubeRay's RayJob has no conditions, only ``jobDeploymentStatus`` (how the cluster and submission are doing)
and ``jobStatus`` (what the Ray job itself is doing). ``ray_state`` reads both into one state, as KubeRay's
controller switches on its deployment status; ``RULES`` says what each state means for the SpeedrunJob.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from speedrun_operator.api import Admission, ConditionType, Phase, SpeedrunJobStatus
from speedrun_operator.status.blockers import Blocker
from speedrun_operator.status.conditions import find, set_condition
from speedrun_operator.status.decision import ConditionChange, Decision, Failure, fail, set_phase
from speedrun_operator.status.queue import QueueState


@dataclass(frozen=True)
class Rule:
    """What one RayJob state means. Messages may name ``{cluster}``, ``{attempts}``, ``{ray_reason}`` and
    ``{ray_message}`` (KubeRay's reason and message)."""

    phase: Phase
    reason: str
    message: str
    conditions: tuple[ConditionChange, ...] = ()


_CLUSTER_UP: ConditionChange = (
    ConditionType.CLUSTER_READY,
    "True",
    "ClusterReady",
    "Ray cluster {cluster} is up",
)

RULES: dict[str, Rule] = {
    "Succeeded": Rule(
        Phase.SUCCEEDED,
        "Succeeded",
        "training finished; results are being published",
        (
            (ConditionType.RUNNING, "False", "Finished", "training finished"),
            (ConditionType.COMPLETE, "True", "Succeeded", "the Ray job succeeded"),
            (ConditionType.FAILED, "False", "Succeeded", ""),
        ),
    ),
    "Queued": Rule(Phase.QUEUED, "WaitingForAdmission", "waiting for Kueue to admit the run"),
    "Suspended": Rule(
        Phase.SUSPENDED,
        "Suspended",
        "suspended: set spec.suspend to false to resume",
        ((ConditionType.RUNNING, "False", "Suspended", "the run is suspended"),),
    ),
    "Training": Rule(
        Phase.RUNNING,
        "Training",
        "the trainer is running on the Ray cluster",
        (_CLUSTER_UP, (ConditionType.RUNNING, "True", "Training", "the trainer is running")),
    ),
    "Submitting": Rule(
        Phase.PROVISIONING, "Submitting", "the Ray cluster is up; submitting the trainer", (_CLUSTER_UP,)
    ),
    "Retrying": Rule(
        Phase.PROVISIONING,
        "Retrying",
        "attempt {attempts} failed ({ray_reason}); retrying on a new Ray cluster, resuming from the latest "
        "checkpoint",
        (
            (ConditionType.CLUSTER_READY, "False", "Retrying", "{ray_message}"),
            (ConditionType.RUNNING, "False", "Retrying", "waiting for the new cluster"),
        ),
    ),
    "ClusterStarting": Rule(
        Phase.PROVISIONING,
        "ClusterStarting",
        "waiting for the Ray cluster's pods to be scheduled and ready",
        ((ConditionType.CLUSTER_READY, "False", "ClusterStarting", "Ray head and workers are starting"),),
    ),
}


def ray_state(
    deployment: str, job_status: str, *, suspended_by_user: bool, queued: bool, admitted: bool = False
) -> str:
    """One of ``RULES``' keys, or ``Failed``. ``admitted``: Kueue admitted a queued run (its RayJob is
    unsuspended and about to start its cluster)."""
    if deployment == "Complete" and job_status == "SUCCEEDED":
        return "Succeeded"
    if deployment in {"Failed", "ValidationFailed"} or (
        deployment == "Complete" and job_status in {"FAILED", "STOPPED"}
    ):
        return "Failed"
    if suspended_by_user or deployment in {"Suspending", "Suspended"}:
        return "Queued" if queued and not suspended_by_user else "Suspended"
    if queued and not admitted and deployment in {"", "New"}:
        return "Queued"
    if deployment == "Running":
        return "Training" if job_status == "RUNNING" else "Submitting"
    if deployment == "Retrying":
        return "Retrying"
    return "ClusterStarting"


def created(current: SpeedrunJobStatus, rayjob_name: str, *, logs_url: str, now: str) -> Decision:
    """The RayJob was just created (or an existing one of ours adopted); its trainer keeps its log at
    ``logs_url``."""
    status = current.model_copy(deep=True)
    status.ray_job_name = rayjob_name
    status.logs_url = logs_url
    status.start_time = status.start_time or now
    status.attempts = status.attempts or 1
    set_phase(
        status,
        Phase.PROVISIONING,
        "RayJobCreated",
        f"created RayJob {rayjob_name}; creating the Ray cluster",
        [(ConditionType.CLUSTER_READY, "False", "ClusterStarting", "Ray head and workers are starting")],
        generation=status.observed_generation,
        now=now,
    )
    return Decision(status)


def observed(
    rayjob: dict[str, Any] | None,
    current: SpeedrunJobStatus,
    *,
    suspended_by_user: bool,
    queued: bool,
    now: str,
    blocker: Blocker | None = None,
    queue: QueueState | None = None,
) -> Decision:
    """The status a SpeedrunJob should have given its RayJob (None when it no longer exists), what keeps
    its cluster from starting, if anything does (``blockers``), and for a queued run what Kueue says of it
    (its Workload, once Kueue made one)."""
    status = current.model_copy(deep=True)
    generation = current.observed_generation
    if current.phase.terminal:
        return Decision(status)
    if rayjob is None:
        fail(status, _deleted(current.ray_job_name), generation=generation, now=now)
        return Decision(status)

    ray: dict[str, Any] = rayjob.get("status") or {}
    deployment, job_status = ray.get("jobDeploymentStatus") or "", ray.get("jobStatus") or ""
    status.ray_cluster_name = ray.get("rayClusterName") or status.ray_cluster_name
    status.dashboard_url = ray.get("dashboardURL") or status.dashboard_url
    status.attempts = 1 + int(ray.get("failed") or 0) if ray else status.attempts
    ray_reason, ray_message = ray.get("reason") or "", ray.get("message") or ""

    admitted = queue is not None and queue.admitted
    state = ray_state(
        deployment, job_status, suspended_by_user=suspended_by_user, queued=queued, admitted=admitted
    )
    if state == "Failed":
        why = ray_reason or (
            "ValidationFailed" if deployment == "ValidationFailed" else f"Job{job_status.title()}"
        )
        message = ray_message or f"KubeRay reports the Ray job {job_status or deployment}"
        fail(status, Failure(why, message), generation=generation, now=now, completion=ray.get("endTime"))
        return Decision(status)

    if state == "ClusterStarting" and blocker is None and current.reason == "RayJobCreated":
        return Decision(status)  # the same story: the cluster it created is still starting
    if queue is not None:
        _admission(status, queue, generation=generation, now=now)
    rule = _blocked(blocker) if state == "ClusterStarting" and blocker is not None else RULES[state]
    if state == "Queued" and queue is not None:
        rule = _queued(queue)
        if queue.preempted and current.reason != PREEMPTED:
            status.preemptions = (status.preemptions or 0) + 1
    context = {
        "blocker": blocker.message if blocker else "",
        "cluster": status.ray_cluster_name,
        "attempts": status.attempts,
        "ray_reason": ray_reason or "no reason given",
        "ray_message": ray_message or "starting a new Ray cluster",
        "kueue_reason": queue.reason if queue else "",
        "kueue_message": queue.message if queue else "",
    }
    _apply(rule, context, status, generation=generation, now=now)
    if state == "Succeeded":
        status.completion_time = status.completion_time or ray.get("endTime") or now
    return Decision(status, rayjob_succeeded=state == "Succeeded")


PREEMPTED = "Preempted"
WAITING_FOR_ADMISSION = "WaitingForAdmission"


def _queued(queue: QueueState) -> Rule:
    """Queued, in Kueue's words: still waiting for quota, or preempted and waiting to be admitted again."""
    if queue.preempted:
        return Rule(
            Phase.QUEUED,
            PREEMPTED,
            "preempted by Kueue: {kueue_message}; queued again, it resumes from its latest checkpoint when "
            "admitted",
            (
                (
                    ConditionType.RUNNING,
                    "False",
                    PREEMPTED,
                    "preempted by Kueue; waiting to be admitted again",
                ),
                (ConditionType.CLUSTER_READY, "False", PREEMPTED, "Kueue suspended the run's RayJob"),
            ),
        )
    return Rule(
        Phase.QUEUED,
        WAITING_FOR_ADMISSION,
        "waiting for Kueue to admit the run ({kueue_reason}): {kueue_message}",
    )


def _admission(status: SpeedrunJobStatus, queue: QueueState, *, generation: int | None, now: str) -> None:
    """The Admitted condition and ``status.admission`` follow the Workload."""
    if queue.admitted and queue.cluster_queue:
        status.admission = Admission(
            cluster_queue=queue.cluster_queue,
            flavors=queue.flavors,
            admitted_at=queue.admitted_at,
            workload=queue.name,
        )
        flavors = ", ".join(f"{podset}: {flavor}" for podset, flavor in sorted(queue.flavors.items()))
        change: ConditionChange = (
            ConditionType.ADMITTED,
            "True",
            "Admitted",
            f"admitted by ClusterQueue {queue.cluster_queue} ({flavors})",
        )
    else:
        status.admission = None
        change = (ConditionType.ADMITTED, "False", queue.reason, queue.message)
    type_, value, why, text = change
    status.conditions = set_condition(
        status.conditions, type_, value, why, text, now=now, generation=generation
    )


def _deleted(rayjob_name: str | None) -> Failure:
    return Failure(
        "RayJobDeleted",
        f"RayJob {rayjob_name} was deleted outside the operator; it is not re-created behind your back. "
        "Delete and re-apply the SpeedrunJob to run again.",
    )


def _blocked(blocker: Blocker) -> Rule:
    return Rule(
        Phase.PROVISIONING,
        blocker.reason,
        "the Ray cluster cannot start: {blocker}",
        ((ConditionType.CLUSTER_READY, "False", blocker.reason, "{blocker}"),),
    )


def _apply(
    rule: Rule, context: dict[str, Any], status: SpeedrunJobStatus, *, generation: int | None, now: str
) -> None:
    set_phase(
        status,
        rule.phase,
        rule.reason,
        rule.message.format(**context),
        [(type_, value, why, text.format(**context)) for type_, value, why, text in rule.conditions],
        generation=generation,
        now=now,
    )


WAITING_PHASES = frozenset({Phase.PENDING, Phase.QUEUED, Phase.PROVISIONING})


def past_deadline(current: SpeedrunJobStatus, deadline_seconds: int | None, *, now: str) -> Decision | None:
    """Failed, and its RayJob to be torn down, when the run is still not Running ``deadline_seconds`` after
    its RayJob was created; None while there is time (or no deadline, or the run has been Running once)."""
    if deadline_seconds is None or current.phase not in WAITING_PHASES or not current.start_time:
        return None
    if (current.attempts or 1) > 1 or _was_running(current):
        return None
    waited = _seconds_between(current.start_time, now)
    if waited < deadline_seconds:
        return None
    status = current.model_copy(deep=True)
    why = f"{current.reason}: {current.message}" if current.reason else "waiting for the cluster"
    message = (
        f"not Running {waited:.0f} s after the RayJob was created (deadline {deadline_seconds} s); {why}"
    )
    failure = Failure("ProvisioningDeadlineExceeded", message)
    fail(status, failure, generation=current.observed_generation, now=now)
    return Decision(status, teardown=True)


def _was_running(status: SpeedrunJobStatus) -> bool:
    running = find(status.conditions, ConditionType.RUNNING)
    return running is not None and running.status == "True"


def _seconds_between(earlier: str, later: str) -> float:
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(later) - parse(earlier)).total_seconds()
