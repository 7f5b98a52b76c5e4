"""A new SpeedrunJob (or one the operator finds at start-up) gets validated and its RayJob created."""

from __future__ import annotations

from typing import Any

import kopf

from speedrun_operator import metrics, reconcile
from speedrun_operator.api import GROUP, PLURAL, VERSION


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.resume(GROUP, VERSION, PLURAL)
def ensure_rayjob(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    with metrics.RECONCILE_SECONDS.labels(handler="ensure_rayjob").time():
        reconcile.reconcile(memo.context, dict(body))


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Children go by garbage collection (owner references); results in storage stay. Drop the metric."""
    memo.context.memory.forget(body.metadata.uid or "")
    metrics.observe_job(body.metadata.namespace or "default", body.metadata.name or "", None, None)
