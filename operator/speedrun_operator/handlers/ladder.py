"""SpeedrunLadders: created or resumed, an event on one of their rungs' SpeedrunJobs (the ladder from a kopf
index, the rungs from the SpeedrunJob index of ``sync``: no GET per event), a suspend edit, and a slow timer
that reads the rungs again until the ladder is settled. Each calls ``reconcile_ladder``."""

from __future__ import annotations

from typing import Any

import kopf

from speedrun_operator import metrics
from speedrun_operator.api import GROUP, PLURAL, VERSION
from speedrun_operator.api.ladder import LADDER_KIND, LADDER_PLURAL
from speedrun_operator.builders.rung_job import LADDER_LABEL
from speedrun_operator.reconcile_ladder import Lookup, reconcile_ladder, stored_ladder_status

RESYNC_SECONDS = 600.0
"""How often an unsettled ladder's rungs are read again, to catch an event the watch missed."""


@kopf.index(GROUP, VERSION, LADDER_PLURAL)
def speedrunladders(namespace: str | None, name: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace or "default", name): dict(body)}


def _from_index(
    namespace: str, kwargs: dict[str, Any], event: tuple[str, dict[str, Any] | None] | None = None
) -> Lookup:
    """A rung's SpeedrunJob from the index ``sync.speedrunjobs``; an event's own body (name, None when it
    was deleted) is fresher than the index."""
    jobs: kopf.Index[Any, Any] = kwargs["speedrunjobs"]

    def lookup(name: str) -> dict[str, Any] | None:
        if event is not None and event[0] == name:
            return event[1]
        return next(iter(jobs.get((namespace, name), [])), None)

    return lookup


@kopf.on.create(GROUP, VERSION, LADDER_PLURAL)
@kopf.on.resume(GROUP, VERSION, LADDER_PLURAL)
def ensure_rungs(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    namespace = body.metadata.namespace or "default"
    with metrics.RECONCILE_SECONDS.labels(handler="ensure_rungs").time():
        reconcile_ladder(memo.ladders, dict(body), _from_index(namespace, kwargs))


@kopf.on.field(GROUP, VERSION, LADDER_PLURAL, field="spec.suspend")
def ladder_suspend_changed(body: kopf.Body, old: Any, new: Any, memo: kopf.Memo, **kwargs: Any) -> None:
    if old is None and new is None:
        return
    namespace = body.metadata.namespace or "default"
    with metrics.RECONCILE_SECONDS.labels(handler="ladder_suspend_changed").time():
        reconcile_ladder(memo.ladders, dict(body), _from_index(namespace, kwargs))


@kopf.on.event(GROUP, VERSION, PLURAL, labels={LADDER_LABEL: kopf.PRESENT})
def rung_changed(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, **kwargs: Any) -> None:
    ladders: kopf.Index[Any, Any] = kwargs["speedrunladders"]
    namespace = body.metadata.namespace or "default"
    owner = next(
        (ref for ref in body.metadata.get("ownerReferences", []) if ref.get("kind") == LADDER_KIND), None
    )
    parent = next(iter(ladders.get((namespace, owner["name"]), [])), None) if owner else None
    if parent is None or parent["metadata"].get("deletionTimestamp"):
        return
    changed = None if event.get("type") == "DELETED" else dict(body)
    lookup = _from_index(namespace, kwargs, (body.metadata.name or "", changed))
    with metrics.RECONCILE_SECONDS.labels(handler="rung_changed").time():
        reconcile_ladder(memo.ladders, parent, lookup)


@kopf.timer(
    GROUP,
    VERSION,
    LADDER_PLURAL,
    interval=RESYNC_SECONDS,
    initial_delay=RESYNC_SECONDS,
    idle=15.0,
    when=lambda body, **_: not stored_ladder_status(dict(body)).settled,
)
def resync_ladder(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    with metrics.RECONCILE_SECONDS.labels(handler="resync_ladder").time():
        reconcile_ladder(memo.ladders, dict(body))


@kopf.on.delete(GROUP, VERSION, LADDER_PLURAL, optional=True)
def forget_ladder(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Rungs go by garbage collection (owner references); their results in storage stay."""
    memo.ladders.memory.forget(body.metadata.uid or "")
    metrics.observe_ladder(body.metadata.namespace or "default", body.metadata.name or "", None)
