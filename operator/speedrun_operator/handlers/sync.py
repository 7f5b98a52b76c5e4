"""Status follows the RayJob: on every RayJob event, with the parent SpeedrunJob taken from memory (a kopf
index of SpeedrunJobs), and on a slow timer that reads the RayJob again to catch an event the watch missed,
until the job is settled."""

from __future__ import annotations

from typing import Any

import kopf

from speedrun_operator import metrics, reconcile
from speedrun_operator.api import GROUP, PLURAL, VERSION
from speedrun_operator.builders.labels import JOB_LABEL, MANAGED_BY, OPERATOR_NAME
from speedrun_operator.reconcile import stored_status
from speedrun_operator.status.observe import WAITING_PHASES

RESYNC_SECONDS = 600.0
"""How often an unfinished job's RayJob is read again: a request per job per 10 minutes catches an event the
watch missed within minutes, at a twentieth of the cost of the old 30-s resync."""


_KEPT_METADATA = (
    "name",
    "namespace",
    "uid",
    "generation",
    "resourceVersion",
    "creationTimestamp",
    # A ladder tells its rungs from another's SpeedrunJob of the same name by these (handlers/ladder.py).
    "ownerReferences",
    "deletionTimestamp",
)


def essentials(body: kopf.Body) -> dict[str, Any]:
    """What a pass and its events need of a SpeedrunJob: not its managedFields or annotations, which are
    most of an object's bytes and, for hundreds of jobs, most of the index's memory."""
    meta = body.metadata
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {key: meta[key] for key in _KEPT_METADATA if key in meta},
        "spec": dict(body.spec),
        "status": dict(body.status),
    }


@kopf.index(GROUP, VERSION, PLURAL)
def speedrunjobs(namespace: str | None, name: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace or "default", name): essentials(body)}


def reconcile_from_view(
    ctx: reconcile.Context, speedrunjobs: kopf.Index[Any, Any], job: tuple[str, str], handler: str
) -> None:
    """A pass for ``job`` after something beside its RayJob changed what the view says of it (a blocker, a
    Workload): the parent from the index, the RayJob from the view (read when the view has none yet)."""
    parent = next(iter(speedrunjobs.get(job, [])), None)
    if parent is None:
        return
    with metrics.RECONCILE_SECONDS.labels(handler=handler).time():
        known = ctx.view.rayjob(job)
        reconcile.reconcile(ctx, parent, rayjob=reconcile.READ if known is None else known)


@kopf.on.event("ray.io", "v1", "rayjobs", labels={MANAGED_BY: OPERATOR_NAME})
def rayjob_changed(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, **kwargs: Any) -> None:
    speedrunjobs: kopf.Index[Any, Any] = kwargs["speedrunjobs"]  # the index above, by its function's name
    namespace = body.metadata.namespace or "default"
    owner = next(
        (ref for ref in body.metadata.get("ownerReferences", []) if ref.get("kind") == "SpeedrunJob"), None
    )
    name = owner["name"] if owner else body.metadata.labels.get(JOB_LABEL)
    parent = next(iter(speedrunjobs.get((namespace, name), [])), None) if name else None
    if parent is None:
        return
    deleted = event.get("type") == "DELETED"
    seen = {"metadata": {"name": body.metadata.name}, "status": dict(body.status)}
    memo.context.view.saw_rayjob((namespace, name), None if deleted else seen)
    if deleted:
        # Garbage collection deletes the RayJob of a deleted SpeedrunJob too: only a live parent is told.
        parent = memo.context.cluster.get_speedrunjob(namespace, name)
        if parent is None or parent["metadata"].get("deletionTimestamp"):
            return
    with metrics.RECONCILE_SECONDS.labels(handler="rayjob_changed").time():
        reconcile.reconcile(memo.context, parent, rayjob=None if deleted else dict(body))


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    interval=RESYNC_SECONDS,
    initial_delay=RESYNC_SECONDS,
    idle=15.0,
    when=lambda body, **_: not stored_status(dict(body)).settled,
)
def resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    with metrics.RECONCILE_SECONDS.labels(handler="resync").time():
        reconcile.reconcile(memo.context, dict(body))


DEADLINE_CHECK_SECONDS = 5.0


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    interval=DEADLINE_CHECK_SECONDS,
    when=lambda spec, body, **_: (
        bool(spec.get("provisioningDeadlineSeconds")) and stored_status(dict(body)).phase in WAITING_PHASES
    ),
)
def provisioning_deadline(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Decided in memory every few seconds; the job is reconciled (and fails) once its deadline passed."""
    if reconcile.deadline_due(dict(body)):
        with metrics.RECONCILE_SECONDS.labels(handler="provisioning_deadline").time():
            reconcile.reconcile(memo.context, dict(body))
