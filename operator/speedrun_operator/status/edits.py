"""Edits after the RayJob exists: suspend/resume is passed on; any other spec change is reported. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from speedrun_operator.api import ConditionType, SpeedrunJobStatus
from speedrun_operator.builders.labels import KUEUE_QUEUE_LABEL
from speedrun_operator.status.conditions import set_condition
from speedrun_operator.status.decision import Decision, Note


def suspend_passed_on(current: SpeedrunJobStatus, *, generation: int | None) -> Decision:
    """spec.suspend went to the RayJob: the status has acted on this generation (the phase follows from
    the RayJob as KubeRay suspends or resumes it)."""
    status = current.model_copy(deep=True)
    status.observed_generation = generation
    return Decision(status)


@dataclass(frozen=True)
class SuspendPatches:
    """The merge patches that pass spec.suspend on: to the RayJob, and to Kueue's Workload."""

    rayjob: dict[str, Any] | None
    workload: dict[str, Any] | None = None


def suspend_patches(suspend: bool, queue_name: str | None, workload: str | None) -> SuspendPatches:
    """A run without a queue: the RayJob's suspend is the user's. A queued run's RayJob suspend is Kueue's:
    Kueue unsuspends it when admitted and would undo a suspend of ours at once, and a resume of ours would
    start it without quota. So a suspend deactivates its Workload (Kueue then evicts it and suspends the
    RayJob itself, without calling it a preemption), and a resume activates it again (Kueue then admits it
    when there is quota); before Kueue made a Workload, the RayJob leaves the queue (its queue label)
    while suspended and joins it on resume. The RayJob is never unsuspended by the operator."""
    if queue_name is None:
        return SuspendPatches({"spec": {"suspend": suspend}})
    active = {"spec": {"active": not suspend}} if workload else None
    if suspend:
        leave = {"metadata": {"labels": {KUEUE_QUEUE_LABEL: None}}, "spec": {"suspend": True}}
        return SuspendPatches(None if workload else leave, active)
    return SuspendPatches({"metadata": {"labels": {KUEUE_QUEUE_LABEL: queue_name}}}, active)


def spec_drifted(
    current: SpeedrunJobStatus, changed_fields: list[str], *, generation: int | None, now: str
) -> Decision:
    """A spec edit after the run was created is not applied; say so on the object, where the user looks."""
    status = current.model_copy(deep=True)
    message = (
        f"spec changed ({', '.join(changed_fields)}) at generation {generation} after the run was created "
        f"from generation {current.observed_generation}; the running job is unchanged. Delete and re-apply "
        "the SpeedrunJob to run the new spec"
    )
    status.conditions = set_condition(
        status.conditions,
        ConditionType.SPEC_DRIFT,
        "True",
        "SpecChangedAfterStart",
        message,
        now=now,
        generation=generation,
    )
    return Decision(status, notes=(Note("Warning", "SpecChangedAfterStart", message),))
