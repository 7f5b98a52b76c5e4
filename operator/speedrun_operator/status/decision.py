"""What a decision is: the status a SpeedrunJob should have now, and what is worth telling about it.

Every phase, reason, message and condition of a SpeedrunJob is set by the pure functions of this package
(accept, observe, results, edits); ``reconcile`` writes what they return, once per pass, and announces the
transition between the stored status and the new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from speedrun_operator.api import ConditionType, Phase, SpeedrunJobStatus
from speedrun_operator.status import blockers
from speedrun_operator.status.conditions import ConditionStatus, set_condition

ConditionChange = tuple[ConditionType, ConditionStatus, str, str]
"""(type, status, reason, message) of one condition to set."""


@dataclass(frozen=True)
class Note:
    """A Kubernetes Event beside the phase transition (e.g. ResultsPublished, SpecChangedAfterStart)."""

    type: str
    """Normal or Warning."""
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    status: SpeedrunJobStatus
    notes: tuple[Note, ...] = ()
    rayjob_succeeded: bool = False
    """The RayJob reports success: the results are to be published next (``status.results.published``)."""
    teardown: bool = False
    """The run failed before its RayJob did: delete the RayJob (and with it the Ray cluster)."""


@dataclass(frozen=True)
class Transition:
    """A phase (or reason) change: one Kubernetes Event, one count in the transitions metric."""

    old: Phase
    new: Phase
    reason: str
    message: str

    @property
    def warning(self) -> bool:
        return self.new == Phase.FAILED or self.reason in blockers.REASONS


def transition(old: SpeedrunJobStatus, new: SpeedrunJobStatus) -> Transition | None:
    if new.phase == old.phase and new.reason == old.reason:
        return None
    return Transition(old.phase, new.phase, new.reason or "", new.message or "")


def set_phase(
    status: SpeedrunJobStatus,
    phase: Phase,
    reason: str,
    message: str,
    conditions: Iterable[ConditionChange],
    *,
    generation: int | None,
    now: str,
) -> None:
    """Set phase, reason and message of ``status`` (a copy the caller owns) and the given conditions."""
    status.phase, status.reason, status.message = phase, reason, message
    for type_, value, why, text in conditions:
        status.conditions = set_condition(
            status.conditions, type_, value, why, text, now=now, generation=generation
        )


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str
    conditions: tuple[tuple[ConditionType, ConditionStatus], ...] = field(
        default=(
            (ConditionType.RUNNING, "False"),
            (ConditionType.COMPLETE, "False"),
            (ConditionType.FAILED, "True"),
        )
    )
    """Which conditions carry the failure: a run that never started has Accepted False, Failed True."""


NEVER_STARTED: tuple[tuple[ConditionType, ConditionStatus], ...] = (
    (ConditionType.ACCEPTED, "False"),
    (ConditionType.FAILED, "True"),
)


def fail(
    status: SpeedrunJobStatus,
    failure: Failure,
    *,
    generation: int | None,
    now: str,
    completion: str | None = None,
) -> None:
    """Failed for good: the phase, the conditions that say why, and when it ended."""
    set_phase(
        status,
        Phase.FAILED,
        failure.reason,
        failure.message,
        [(type_, value, failure.reason, failure.message) for type_, value in failure.conditions],
        generation=generation,
        now=now,
    )
    status.completion_time = status.completion_time or completion or now
