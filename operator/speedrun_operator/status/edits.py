"""Edits after the RayJob exists: suspend/resume is passed on; any other spec change is reported. Pure."""

from __future__ import annotations

from speedrun_operator.api import ConditionType, SpeedrunJobStatus
from speedrun_operator.status.conditions import set_condition
from speedrun_operator.status.decision import Decision, Note


def suspend_passed_on(current: SpeedrunJobStatus, *, generation: int | None) -> Decision:
    """spec.suspend went to the RayJob: the status has acted on this generation (the phase follows from
    the RayJob as KubeRay suspends or resumes it)."""
    status = current.model_copy(deep=True)
    status.observed_generation = generation
    return Decision(status)


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
