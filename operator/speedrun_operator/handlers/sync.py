"""Status follows the RayJob: on every RayJob event, and on a slow timer that catches anything missed (until
the job is finished and its results published)."""

from __future__ import annotations

from typing import Any

import kopf

from speedrun_operator import kube, metrics, reconcile
from speedrun_operator.api import GROUP, PLURAL, VERSION
from speedrun_operator.builders.labels import JOB_LABEL, MANAGED_BY, OPERATOR_NAME
from speedrun_operator.handlers.events import post
from speedrun_operator.status.observe import needs_resync


@kopf.on.event("ray.io", "v1", "rayjobs", labels={MANAGED_BY: OPERATOR_NAME})
def rayjob_changed(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    owner = next(
        (ref for ref in body.metadata.get("ownerReferences", []) if ref.get("kind") == "SpeedrunJob"), None
    )
    name = owner["name"] if owner else body.metadata.labels.get(JOB_LABEL)
    if not name:
        return
    parent = kube.get_speedrunjob(body.metadata.namespace or "default", name)
    if parent is None:
        return
    with metrics.RECONCILE_SECONDS.labels(handler="rayjob_changed").time():
        # The event carries the RayJob as it is now; a deletion is confirmed by a read instead.
        current = None if event.get("type") == "DELETED" else dict(body)
        reconcile.sync_from_rayjob(parent, memo.config, post, rayjob=current)


@kopf.timer(
    GROUP, VERSION, PLURAL, interval=30.0, idle=15.0, when=lambda status, **_: needs_resync(dict(status))
)
def resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    with metrics.RECONCILE_SECONDS.labels(handler="resync").time():
        reconcile.sync_from_rayjob(dict(body), memo.config, post)
