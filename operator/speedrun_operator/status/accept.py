"""Acceptance: a new SpeedrunJob's spec is validated once, and either gets its run info or fails for good."""

from __future__ import annotations

from typing import Any

from speedrun_operator.api import ConditionType, InvalidSpeedrunJob, Phase, SpeedrunJobSpec, SpeedrunJobStatus
from speedrun_operator.api.validation import parse_spec
from speedrun_operator.runinfo import compute_run_info
from speedrun_operator.status.conditions import FAILED_ACCEPTANCE, set_condition


def accept(
    spec_data: Any, current: SpeedrunJobStatus, *, generation: int | None, now: str
) -> tuple[SpeedrunJobSpec | None, SpeedrunJobStatus]:
    """Validate the spec. Invalid: Failed with reason InvalidSpec naming each field (no retries, ever)."""
    status = current.model_copy(deep=True)
    status.observed_generation = generation
    try:
        spec = parse_spec(spec_data)
    except InvalidSpeedrunJob as exc:
        message = "; ".join(str(error) for error in exc.errors)
        status.phase, status.reason, status.message = Phase.FAILED, "InvalidSpec", message
        status.completion_time = status.completion_time or now
        for type_, value in FAILED_ACCEPTANCE:
            status.conditions = set_condition(
                status.conditions,
                type_,
                value,
                "InvalidSpec",
                message,
                now=now,
                generation=generation,
            )
        return None, status
    status.run_info = compute_run_info(spec)
    status.accelerator = spec.resources.describe()
    status.conditions = set_condition(
        status.conditions,
        ConditionType.ACCEPTED,
        "True",
        "Accepted",
        f"{status.run_info.parameters_display} parameters, {status.run_info.total_tokens:,} tokens, "
        f"{status.run_info.model_flops:.3e} model FLOPs on {status.accelerator}",
        now=now,
        generation=generation,
    )
    return spec, status
