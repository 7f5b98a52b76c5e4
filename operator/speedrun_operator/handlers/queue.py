"""What Kueue says of a queued run: its Workload's events, read into the view so the job's status shows
within seconds why it waits, where it was admitted, or that it was preempted. Watched only where Kueue's
CRDs exist (kopf finds them when they appear)."""

from __future__ import annotations

from typing import Any

import kopf

from speedrun_operator import reconcile
from speedrun_operator.builders.names import rayjob_name
from speedrun_operator.handlers.sync import reconcile_from_view
from speedrun_operator.status import queue

WORKLOADS = ("kueue.x-k8s.io", "v1beta2", "workloads")


def _ours(rayjob: str) -> bool:
    return rayjob.startswith(rayjob_name(""))


@kopf.on.event(*WORKLOADS, when=lambda body, **_: _ours(queue.owner_rayjob(dict(body)) or ""))
def workload_changed(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, **kwargs: Any) -> None:
    ctx: reconcile.Context = memo.context
    namespace = body.metadata.namespace or "default"
    rayjob = queue.owner_rayjob(dict(body)) or ""
    state = None if event.get("type") == "DELETED" else queue.of_workload(dict(body))
    if not ctx.view.saw_workload(namespace, rayjob, state):
        return
    job = ctx.view.job_of_rayjob(namespace, rayjob)
    if job is None:
        return  # its RayJob's first event has not come yet; that event's pass reads the view
    reconcile_from_view(ctx, kwargs["speedrunjobs"], job, "workload_changed")
