"""Why a job's Ray cluster does not come up: its RayCluster's and pods' events, read into blockers that the
job's status and a Warning event show within seconds; and the namespaces that enforce Pod Security's
restricted profile, which change how a RayJob is submitted there."""

from __future__ import annotations

from typing import Any

import kopf

from speedrun_operator import reconcile
from speedrun_operator.builders.labels import JOB_LABEL, MANAGED_BY, OPERATOR_NAME
from speedrun_operator.handlers.sync import reconcile_from_view
from speedrun_operator.status import blockers


@kopf.on.event("ray.io", "v1", "rayclusters", labels={MANAGED_BY: OPERATOR_NAME})
def raycluster_changed(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, **kwargs: Any) -> None:
    found = None if event.get("type") == "DELETED" else blockers.of_raycluster(dict(body))
    _saw(memo, kwargs["speedrunjobs"], body, f"raycluster/{body.metadata.name}", found)


@kopf.on.event("", "v1", "pods", labels={MANAGED_BY: OPERATOR_NAME})
def pod_changed(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, **kwargs: Any) -> None:
    found = None if event.get("type") == "DELETED" else blockers.of_pod(dict(body))
    _saw(memo, kwargs["speedrunjobs"], body, f"pod/{body.metadata.name}", found)


def _saw(
    memo: kopf.Memo,
    speedrunjobs: kopf.Index[Any, Any],
    body: kopf.Body,
    source: str,
    found: blockers.Blocker | None,
) -> None:
    ctx: reconcile.Context = memo.context
    job = (body.metadata.namespace or "default", body.metadata.labels.get(JOB_LABEL, ""))
    if ctx.view.saw_blocker(job, source, found):
        reconcile_from_view(ctx, speedrunjobs, job, "cluster_health")


@kopf.on.event("", "v1", "namespaces")
def namespace_changed(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    labels = None if event.get("type") == "DELETED" else dict(body.metadata.labels)
    memo.context.view.saw_namespace(body.metadata.name or "", labels)
