"""A SpeedrunLadder's status from its rungs' SpeedrunJobs: each rung's outcome, the scaling fit, the phase,
and which rungs to create or suspend next. Pure functions; ``reconcile_ladder`` does what they say.

The fit is the scaling board's: the site's solver and our converged least-squares fit
(``submissions.site_fit`` and ``submissions.power_law``) over each finished rung's (model FLOPs, bpb), the
points ``speedrun leaderboard`` fits for the ladder's folder. A rung fails the ladder only when its
SpeedrunJob is Failed, which it is only after its own retries (the RayJob's backoffLimit).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from speedrun_operator.api import ConditionType, Phase, SpeedrunJobStatus
from speedrun_operator.api.ladder import (
    WAITING,
    FitStatus,
    LadderPhase,
    PowerLawStatus,
    RungStatus,
    SpeedrunLadder,
    SpeedrunLadderStatus,
)
from speedrun_operator.ladder.rungs import Rung
from speedrun_operator.runinfo import compute_run_info
from speedrun_operator.status.conditions import ConditionStatus, set_condition
from speedrun_operator.status.decision import Note
from speedrun_operator.submissions.boards import SCALING_BOARD_MIN_HARDWARE_FLOPS
from speedrun_operator.submissions.power_law import (
    MIN_FIT_POINTS,
    TARGET_FLOPS,
    TARGET_LABEL,
    FitUnavailable,
    PowerLaw,
    converged_fit,
)
from speedrun_operator.submissions.site_fit import SiteFit, site_fit

_TERMINAL = {Phase.SUCCEEDED.value, Phase.FAILED.value}


@dataclass(frozen=True)
class Child:
    """A rung's SpeedrunJob as the operator sees it."""

    status: SpeedrunJobStatus
    suspended: bool
    """Its spec.suspend."""


@dataclass(frozen=True)
class LadderDecision:
    status: SpeedrunLadderStatus
    create: tuple[str, ...] = ()
    """Rungs whose SpeedrunJob is to be created now (the status already counts them as created)."""
    suspend: tuple[tuple[str, bool], ...] = ()
    """(SpeedrunJob, spec.suspend) to patch: the ladder's suspend reaching a rung."""
    notes: tuple[Note, ...] = field(default=())


def decide(
    ladder: SpeedrunLadder,
    rungs: Sequence[Rung],
    old: SpeedrunLadderStatus,
    children: Mapping[str, Child | None],
    *,
    generation: int | None,
    now: str,
) -> LadderDecision:
    """The ladder's status given its rungs' SpeedrunJobs (by name; None: not there), what to create next
    within the parallelism, and what to suspend or resume."""
    spec = ladder.spec
    recorded = {rung.name: rung for rung in old.rungs}
    statuses = [_rung_status(rung, children.get(rung.job.name), recorded.get(rung.name)) for rung in rungs]
    failed = next((s for s in statuses if s.phase == Phase.FAILED.value), None)
    active = sum(1 for s in statuses if s.phase not in _TERMINAL and s.phase != WAITING)
    create: list[str] = []
    if failed is None and not spec.suspend:
        waiting = [s for s in statuses if s.phase == WAITING]
        create = [s.name for s in waiting[: max(spec.parallelism - active, 0)]]
    statuses = [
        s.model_copy(update={"phase": Phase.PENDING.value, "reason": "Created"}) if s.name in create else s
        for s in statuses
    ]
    suspend = tuple(
        (rung.job.name, spec.suspend)
        for rung in rungs
        if (child := children.get(rung.job.name)) is not None
        and not child.status.phase.terminal
        and child.suspended != spec.suspend
    )

    status = old.model_copy(deep=True)
    status.observed_generation = generation
    status.rungs = statuses
    done = [s for s in statuses if _done(s)]
    status.rungs_done = f"{len(done)}/{len(statuses)}"
    status.total_model_flops = sum(s.model_flops or 0.0 for s in statuses)
    status.total_hardware_flops = sum(s.hardware_flops or 0.0 for s in done)
    status.fit, fit_problem = _fit(done)
    site = status.fit.site if status.fit else None
    status.projected_bpb = f"{site.projected_bpb:.4f}" if site else None
    if status.start_time is None and any(s.phase != WAITING for s in statuses):
        status.start_time = now
    _set_phase(status, spec.suspend, failed, done, create, generation=generation, now=now)
    _set_fit_condition(status, fit_problem, generation=generation, now=now)
    return LadderDecision(
        status,
        tuple(create),
        suspend,
        tuple(_notes(old, status)),
    )


def _rung_status(rung: Rung, child: Child | None, recorded: RungStatus | None) -> RungStatus:
    if child is None:
        if recorded is not None and _done(recorded):
            return recorded  # its SpeedrunJob is gone, its results are not: the rung stays done
        info = compute_run_info(rung.job.spec)
        return RungStatus(
            name=rung.name,
            job=rung.job.name,
            phase=WAITING,
            parameters=info.parameters,
            model_flops=info.model_flops,
        )
    job = child.status
    info = job.run_info or compute_run_info(rung.job.spec)
    results = job.results
    return RungStatus(
        name=rung.name,
        job=rung.job.name,
        phase=job.phase.value,
        reason=job.reason,
        parameters=info.parameters,
        model_flops=results.model_flops if results else info.model_flops,
        hardware_flops=results.training_hardware_flops if results else None,
        eval_bpb=results.eval_bpb if results else None,
        eval_set=results.eval_set if results else None,
        results_url=results.results_url if results else None,
    )


def _done(rung: RungStatus) -> bool:
    return rung.phase == Phase.SUCCEEDED.value and rung.results_url is not None


def _fit(done: Sequence[RungStatus]) -> tuple[FitStatus | None, str | None]:
    """The fit of the finished rungs, or None and why not."""
    measured = [s for s in done if s.eval_bpb is not None and s.model_flops is not None]
    sets = sorted({s.eval_set or "" for s in measured})
    if len(measured) < MIN_FIT_POINTS:
        return None, f"{len(measured)} of the {MIN_FIT_POINTS} finished rungs with an eval bpb a fit needs"
    if len(sets) > 1:
        return None, f"the rungs' bpb are on different validation sets ({', '.join(sets)}); no fit"
    points = tuple((s.model_flops or 0.0, s.eval_bpb or 0.0) for s in measured)
    site, converged = _fits(points)
    fit = FitStatus(
        points=len(points),
        eval_set=sets[0] or None,
        site=_law(site.law) if site else None,
        converged=_law(converged) if converged else None,
        listed=any((s.hardware_flops or 0.0) > SCALING_BOARD_MIN_HARDWARE_FLOPS for s in done),
    )
    return fit, None if site else "the site's solver finds no fit through these rungs"


@functools.lru_cache(maxsize=256)
def _fits(points: tuple[tuple[float, float], ...]) -> tuple[SiteFit | None, PowerLaw | None]:
    """Both fits of the points (each event on a rung asks again; the points rarely change)."""
    try:
        converged = converged_fit(points)
    except FitUnavailable:
        converged = None
    return site_fit(points), converged


def _law(law: PowerLaw) -> PowerLawStatus:
    return PowerLawStatus(a=law.a, b=law.b, c=law.c, r2=law.r2, projected_bpb=law.predict(TARGET_FLOPS))


def _set_phase(
    status: SpeedrunLadderStatus,
    suspended: bool,
    failed: RungStatus | None,
    done: Sequence[RungStatus],
    create: Sequence[str],
    *,
    generation: int | None,
    now: str,
) -> None:
    count = f"{len(done)}/{len(status.rungs)} rungs done"
    running = [s.name for s in status.rungs if s.phase not in _TERMINAL and s.phase != WAITING]
    if failed is not None:
        message = f"rung {failed.name} ({failed.job}) failed: {failed.reason or 'Failed'}; {count}"
        _phase(status, LadderPhase.FAILED, "RungFailed", message)
        _condition(status, ConditionType.FAILED, "True", "RungFailed", message, generation, now)
        status.completion_time = status.completion_time or now
    elif len(done) == len(status.rungs):
        message = f"{count}; " + _fit_summary(status)
        _phase(status, LadderPhase.SUCCEEDED, "Finished", message)
        _condition(status, ConditionType.COMPLETE, "True", "Finished", message, generation, now)
        status.completion_time = status.completion_time or now
    elif suspended:
        message = f"suspended: set spec.suspend to false to resume; {count}"
        _phase(status, LadderPhase.SUSPENDED, "Suspended", message)
    elif running:
        message = f"{count}; running {', '.join(running)}" + (
            f"; created {', '.join(create)}" if create else ""
        )
        _phase(status, LadderPhase.RUNNING, "RungsRunning", message)
    else:
        _phase(status, LadderPhase.PENDING, "Waiting", f"{count}; no rung running")
    accepted = f"{len(status.rungs)} rungs, {status.total_model_flops or 0.0:.3e} model FLOPs in all"
    _condition(status, ConditionType.ACCEPTED, "True", "Accepted", accepted, generation, now)


def _fit_summary(status: SpeedrunLadderStatus) -> str:
    fit = status.fit
    if fit is None or fit.site is None:
        return "no fit"
    ours = f" (ours: {fit.converged.projected_bpb:.4f})" if fit.converged else ""
    return f"site fit projects {fit.site.projected_bpb:.4f} bpb at {TARGET_LABEL} FLOPs{ours}"


def _set_fit_condition(
    status: SpeedrunLadderStatus, problem: str | None, *, generation: int | None, now: str
) -> None:
    if status.fit is not None and status.fit.site is not None:
        listed = "" if status.fit.listed else "; not listed: no rung used over 3e20 hardware FLOPs"
        message = f"{status.fit.points} rungs: {_fit_summary(status)}{listed}"
        _condition(status, ConditionType.FITTED, "True", "Fitted", message, generation, now)
    else:
        why = problem or "no fit"
        _condition(status, ConditionType.FITTED, "False", "NotFitted", why, generation, now)


def _phase(status: SpeedrunLadderStatus, phase: LadderPhase, reason: str, message: str) -> None:
    status.phase, status.reason, status.message = phase, reason, message


def _condition(
    status: SpeedrunLadderStatus,
    type_: ConditionType,
    value: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
) -> None:
    status.conditions = set_condition(
        status.conditions, type_, value, reason, message, now=now, generation=generation
    )


def created(rung: str, job_name: str) -> Note:
    return Note("Normal", "RungCreated", f"rung {rung}: created SpeedrunJob {job_name}")


def _notes(old: SpeedrunLadderStatus, new: SpeedrunLadderStatus) -> list[Note]:
    notes: list[Note] = []
    was_done = {rung.name for rung in old.rungs if _done(rung)}
    for rung in new.rungs:
        if _done(rung) and rung.name not in was_done:
            bpb = f"eval bpb {rung.eval_bpb:.4f} on {rung.eval_set}" if rung.eval_bpb else "no eval bpb"
            notes.append(
                Note(
                    "Normal",
                    "RungFinished",
                    f"rung {rung.name}: {bpb}, {rung.model_flops or 0:.3e} model FLOPs",
                )
            )
    old_site = old.fit.site if old.fit else None
    new_site = new.fit.site if new.fit else None
    if new_site is not None and new_site != old_site and new.fit is not None:
        notes.append(Note("Normal", "FitUpdated", f"{new.fit.points} rungs: {_fit_summary(new)}"))
    return notes


def invalid(
    old: SpeedrunLadderStatus, reason: str, message: str, *, generation: int | None, now: str
) -> LadderDecision:
    """A ladder that cannot run (an invalid rung, no output prefix, a name taken): Failed for good."""
    status = old.model_copy(deep=True)
    status.observed_generation = generation
    status.phase, status.reason, status.message = LadderPhase.FAILED, reason, message
    status.conditions = set_condition(
        status.conditions, ConditionType.ACCEPTED, "False", reason, message, now=now, generation=generation
    )
    status.conditions = set_condition(
        status.conditions, ConditionType.FAILED, "True", reason, message, now=now, generation=generation
    )
    status.completion_time = status.completion_time or now
    return LadderDecision(status)


def name_conflict(job_name: str) -> tuple[str, str]:
    return (
        "NameConflict",
        f"a SpeedrunJob named {job_name} already exists and does not belong to this ladder; delete it or "
        "rename the ladder",
    )


NO_OUTPUT = (
    "NoOutput",
    "spec.base.output is not set and the operator has no default output prefix; set spec.base.output to a "
    "gs:// or s3:// URL",
)
