"""What the operator does for one SpeedrunLadder, free of kopf: read its rungs, decide, act, write once.

``reconcile_ladder`` is the one entry point for a created or resumed ladder, an event on one of its rungs'
SpeedrunJobs, a suspend edit and the resync timer. It reads the rungs' SpeedrunJobs (from the caller's index,
or through the ``LadderCluster``), asks ``status.ladder`` for the new status, creates the rungs it names
(an existing one of ours is adopted), passes spec.suspend on, writes the status at most once, then updates
the metrics and posts the events. The rungs' names are deterministic, so an operator killed at any point
converges on restart without a duplicate rung.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from speedrun_operator import metrics
from speedrun_operator.api import InvalidSpeedrunJob, SpeedrunJobStatus
from speedrun_operator.api.ladder import SpeedrunLadder, SpeedrunLadderStatus
from speedrun_operator.builders.rung_job import build_rung_job
from speedrun_operator.config import OperatorConfig
from speedrun_operator.ladder.rungs import Rung, parse_ladder
from speedrun_operator.reconcile import AlreadyExists, JobMemory, now_rfc3339, stored_status
from speedrun_operator.status import ladder as decider
from speedrun_operator.status.decision import Note

logger = logging.getLogger(__name__)


class LadderCluster(Protocol):
    """The API calls a ladder's reconcile makes (``kube.KubeCluster`` in production, a fake in tests)."""

    def get_speedrunjob(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def create_speedrunjob(self, body: dict[str, Any]) -> None:
        """Raises AlreadyExists when a SpeedrunJob of that name exists."""

    def patch_speedrunjob(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...

    def patch_ladder_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the SpeedrunLadder's status subresource; returns the ladder as stored now."""

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None: ...


Lookup = Callable[[str], dict[str, Any] | None]
"""A rung's SpeedrunJob by name, as the caller knows it (a kopf index), None when it knows none."""


@dataclass(frozen=True)
class LadderContext:
    cluster: LadderCluster
    config: OperatorConfig
    memory: JobMemory = field(default_factory=JobMemory)


def stored_ladder_status(body: dict[str, Any]) -> SpeedrunLadderStatus:
    raw = body.get("status") or {}
    known = {key: value for key, value in raw.items() if key in _STATUS_KEYS}
    return SpeedrunLadderStatus.model_validate(known)


_STATUS_KEYS = {f.alias or name for name, f in SpeedrunLadderStatus.model_fields.items()}


def reconcile_ladder(ctx: LadderContext, body: dict[str, Any], lookup: Lookup | None = None) -> None:
    """Bring one ladder forward. ``lookup`` gives its rungs' SpeedrunJobs (None: read each from the API)."""
    meta = body["metadata"]
    with ctx.memory.lock(meta.get("uid", "")):
        body = ctx.memory.fresher(body)
        old = stored_ladder_status(body)
        metrics.observe_ladder(_namespace(body), meta["name"], old)
        if old.settled:
            return
        namespace = _namespace(body)
        find = lookup or (lambda name: ctx.cluster.get_speedrunjob(namespace, name))
        _write(ctx, body, old, _decide(ctx, body, old, find, now_rfc3339()))


def _decide(
    ctx: LadderContext, body: dict[str, Any], old: SpeedrunLadderStatus, find: Lookup, now: str
) -> decider.LadderDecision:
    meta = body["metadata"]
    generation = meta.get("generation")
    try:
        ladder, found = parse_ladder(body, ctx.config.default_output)
    except InvalidSpeedrunJob as exc:
        message = "; ".join(str(error) for error in exc.errors)
        return decider.invalid(old, "InvalidSpec", message, generation=generation, now=now)
    if found[0].job.spec.output is None:
        return decider.invalid(old, *decider.NO_OUTPUT, generation=generation, now=now)
    children = {rung.job.name: _child(find(rung.job.name), meta["uid"]) for rung in found}
    by_name = {rung.name: rung for rung in found}
    tried: set[str] = set()
    notes: list[Note] = []
    # An adopted rung may turn out finished (the index lagged), which frees its place: decide again.
    while True:
        decision = decider.decide(ladder, found, old, children, generation=generation, now=now)
        todo = [name for name in decision.create if name not in tried]
        if not todo:
            break
        for name in todo:
            tried.add(name)
            rung = by_name[name]
            outcome = _create(ctx, ladder, rung, meta["uid"])
            if isinstance(outcome, str):
                conflict = decider.name_conflict(outcome)
                return decider.invalid(old, *conflict, generation=generation, now=now)
            if outcome is _NEW:
                notes.append(decider.created(rung.name, rung.job.name))
                outcome = decider.Child(status=SpeedrunJobStatus(), suspended=rung.job.spec.suspend)
            children[rung.job.name] = outcome
    for job_name, suspend in decision.suspend:
        ctx.cluster.patch_speedrunjob(ladder.namespace, job_name, {"spec": {"suspend": suspend}})
    return replace(decision, notes=(*notes, *decision.notes))


_NEW = decider.Child(status=SpeedrunJobStatus(), suspended=False)
"""What ``_create`` returns for a SpeedrunJob it created."""


def _create(ctx: LadderContext, ladder: SpeedrunLadder, rung: Rung, uid: str) -> decider.Child | str:
    """Create the rung's SpeedrunJob (``_NEW``); one of ours that exists already is adopted (its state comes
    back). A name taken by another object's SpeedrunJob comes back as that name."""
    body = build_rung_job(rung, ladder.name, uid)
    try:
        ctx.cluster.create_speedrunjob(body)
    except AlreadyExists:
        existing = ctx.cluster.get_speedrunjob(ladder.namespace, rung.job.name)
        child = _child(existing, uid)
        if child is None:
            return rung.job.name
        # Created by an earlier pass (an operator killed before it wrote the status): adopted as it is.
        logger.info("[%s/%s] adopted SpeedrunJob %s", ladder.namespace, ladder.name, rung.job.name)
        return child
    return _NEW


def _child(body: dict[str, Any] | None, uid: str) -> decider.Child | None:
    """A rung's SpeedrunJob, if it is this ladder's (same name, owned by another object: not ours)."""
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    owners = body["metadata"].get("ownerReferences", [])
    if not any(ref.get("uid") == uid for ref in owners):
        return None
    return decider.Child(status=stored_status(body), suspended=bool((body.get("spec") or {}).get("suspend")))


def _write(
    ctx: LadderContext, body: dict[str, Any], old: SpeedrunLadderStatus, decision: decider.LadderDecision
) -> None:
    """The one writer of a ladder's status, then metrics, events and a log line."""
    new = decision.status
    namespace, name = _namespace(body), body["metadata"]["name"]
    after = new.model_dump(mode="json", exclude_none=True)
    before = old.model_dump(mode="json", exclude_none=True)
    changed = {key: value for key, value in after.items() if before.get(key) != value}
    # A merge patch cannot remove a field by leaving it out: a fit that no longer holds is nulled.
    changed.update({key: None for key in before if key not in after})
    if changed:
        ctx.memory.remember(ctx.cluster.patch_ladder_status(namespace, name, changed))
    metrics.observe_ladder(namespace, name, new)
    if new.phase != old.phase or new.reason != old.reason:
        text = f"{old.phase.value} -> {new.phase.value}: {new.message}"
        warning = new.phase.value == "Failed"
        ctx.cluster.post_event(body, "Warning" if warning else "Normal", new.reason or new.phase.value, text)
        logger.info("[%s/%s] %s", namespace, name, text)
    for note in decision.notes:
        ctx.cluster.post_event(body, note.type, note.reason, note.message)
        logger.info("[%s/%s] %s", namespace, name, note.message)


def _namespace(body: dict[str, Any]) -> str:
    namespace: str = body["metadata"].get("namespace") or "default"
    return namespace
