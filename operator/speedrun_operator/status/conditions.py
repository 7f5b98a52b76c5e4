"""Conditions in the Kubernetes API conventions: a transition time that moves only when status moves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from speedrun_operator.api import Condition, ConditionType

ConditionStatus = Literal["True", "False", "Unknown"]


def set_condition(
    conditions: Sequence[Condition],
    type_: ConditionType,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """Return conditions with ``type_`` set; lastTransitionTime is kept when the status did not change."""
    previous = find(conditions, type_)
    transition = previous.last_transition_time if previous and previous.status == status else now
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    others = [c for c in conditions if c.type != type_]
    return sorted([*others, updated], key=lambda c: _ORDER.get(c.type, len(_ORDER)))


def find(conditions: Sequence[Condition], type_: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


_ORDER = {t.value: index for index, t in enumerate(ConditionType)}
