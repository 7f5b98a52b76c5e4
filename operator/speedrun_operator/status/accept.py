"""Acceptance: a new SpeedrunJob's spec is validated once, and either gets its run info or fails for good."""

from __future__ import annotations

from typing import Any

from speedrun_operator.api import ConditionType, InvalidSpeedrunJob, SpeedrunJobSpec, SpeedrunJobStatus
from speedrun_operator.api.validation import parse_spec
from speedrun_operator.runinfo import compute_run_info
from speedrun_operator.status.conditions import set_condition
from speedrun_operator.status.decision import NEVER_STARTED, Decision, Failure, fail


def accept(
    spec_data: Any, current: SpeedrunJobStatus, *, generation: int | None, now: str
) -> tuple[SpeedrunJobSpec | None, Decision]:
    """Validate the spec. Invalid: Failed with reason InvalidSpec naming each field (no retries, ever)."""
    status = current.model_copy(deep=True)
    status.observed_generation = generation
    try:
        spec = parse_spec(spec_data)
    except InvalidSpeedrunJob as exc:
        message = "; ".join(str(error) for error in exc.errors)
        fail(status, Failure("InvalidSpec", message, NEVER_STARTED), generation=generation, now=now)
        return None, Decision(status)
    status.accelerator = spec.resources.describe()
    # A custom model's counts come from its code, which only the trainer imports: they reach the status
    # with the results.
    status.run_info = None if spec.model.is_custom else compute_run_info(spec)
    info = status.run_info
    status.conditions = set_condition(
        status.conditions,
        ConditionType.ACCEPTED,
        "True",
        "Accepted",
        f"{info.parameters_display} parameters, {info.total_tokens:,} tokens, "
        f"{info.model_flops:.3e} model FLOPs on {status.accelerator}"
        if info is not None
        else f"{spec.model.describe()} on {status.accelerator}; its counts come with the results",
        now=now,
        generation=generation,
    )
    return spec, Decision(status)


def reject(accepted: SpeedrunJobStatus, reason: str, message: str, *, now: str) -> Decision:
    """A valid spec that cannot run here (no output prefix, a name taken by another RayJob): Failed for
    good, with the run info acceptance computed kept for the user to read."""
    status = accepted.model_copy(deep=True)
    fail(status, Failure(reason, message, NEVER_STARTED), generation=status.observed_generation, now=now)
    return Decision(status)


NO_OUTPUT = (
    "NoOutput",
    "spec.output is not set and the operator has no default output prefix; set spec.output to a gs:// or "
    "s3:// URL",
)


def name_conflict(rayjob_name: str) -> tuple[str, str]:
    return (
        "NameConflict",
        f"a RayJob named {rayjob_name} already exists and does not belong to this SpeedrunJob; delete it or "
        "rename the SpeedrunJob",
    )
