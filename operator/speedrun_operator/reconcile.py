"""What the operator does for one SpeedrunJob, free of kopf: read what it needs, decide, write once.

``reconcile`` is the one entry point for a created or resumed job, a RayJob event and the resync timer;
``suspend_changed`` and ``spec_changed`` handle edits. Each pass reads through a ``Cluster`` (the few API
calls the operator makes), asks ``status/`` for the new status, writes it at most once, then updates the
metrics and posts the events. Every step is keyed on deterministic names, so an operator killed at any
point converges on restart without duplicating anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from speedrun_operator import metrics
from speedrun_operator.api import (
    ConditionType,
    ObjectMeta,
    Phase,
    SpeedrunJob,
    SpeedrunJobSpec,
    SpeedrunJobStatus,
)
from speedrun_operator.builders import build_rayjob
from speedrun_operator.builders.pods import output_prefix
from speedrun_operator.cluster_view import ClusterView
from speedrun_operator.config import OperatorConfig
from speedrun_operator.contract import OutputLayout
from speedrun_operator.status import edits, results
from speedrun_operator.status.accept import NO_OUTPUT, accept, name_conflict, reject
from speedrun_operator.status.conditions import find
from speedrun_operator.status.decision import Decision, transition
from speedrun_operator.status.observe import created, observed, past_deadline

logger = logging.getLogger(__name__)


class AlreadyExists(Exception):
    """The object to create exists already (HTTP 409)."""


class Cluster(Protocol):
    """The API calls the operator makes (``kube.KubeCluster`` in production, a fake in the unit tests)."""

    def get_rayjob(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def create_rayjob(self, body: dict[str, Any]) -> None:
        """Raises AlreadyExists when a RayJob of that name exists."""

    def patch_rayjob(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...

    def patch_workload(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch one of Kueue's Workloads (its spec.active: a queued run's suspend)."""

    def delete_rayjob(self, namespace: str, name: str) -> None: ...

    def namespace_labels(self, namespace: str) -> dict[str, str]: ...

    def get_speedrunjob(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the SpeedrunJob's status subresource; returns the SpeedrunJob as stored now."""

    def post_event(self, job: dict[str, Any], type_: str, reason: str, message: str) -> None: ...

    def read_text(self, url: str) -> str:
        """A file in object storage (the results); raises OSError when it cannot be read."""


@dataclass
class JobMemory:
    """What the operator remembers between passes: a lock per job, so a RayJob event and a SpeedrunJob
    handler never decide at once, and the status it last wrote, so a body from the watch that predates that
    write (kopf's index lags our own patches) is not decided on again."""

    _guard: threading.Lock = field(default_factory=threading.Lock)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _written: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    @contextmanager
    def lock(self, uid: str) -> Iterator[None]:
        with self._guard:
            job_lock = self._locks.setdefault(uid, threading.Lock())
        with job_lock:
            yield

    def fresher(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body``, with the status this operator wrote last when that write is newer than the body."""
        meta = body["metadata"]
        written = self._written.get(meta.get("uid", ""))
        if written is None or written[0] <= _version(meta):
            return body
        return {**body, "status": written[1]}

    def remember(self, stored: dict[str, Any]) -> None:
        meta = stored["metadata"]
        self._written[meta.get("uid", "")] = (_version(meta), stored.get("status") or {})

    def forget(self, uid: str) -> None:
        with self._guard:
            self._locks.pop(uid, None)
        self._written.pop(uid, None)


def _version(meta: dict[str, Any]) -> int:
    # resourceVersion is opaque by contract, but etcd's revisions are increasing integers.
    value = str(meta.get("resourceVersion") or "0")
    return int(value) if value.isdigit() else 0


@dataclass(frozen=True)
class Context:
    cluster: Cluster
    config: OperatorConfig
    memory: JobMemory = field(default_factory=JobMemory)
    view: ClusterView = field(default_factory=ClusterView)


class _Read:
    """The RayJob is to be read from the cluster (no event brought it)."""


READ = _Read()


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stored_status(body: dict[str, Any]) -> SpeedrunJobStatus:
    raw = body.get("status") or {}
    known = {key: value for key, value in raw.items() if key in _STATUS_KEYS}
    return SpeedrunJobStatus.model_validate(known)


_STATUS_KEYS = {field.alias or name for name, field in SpeedrunJobStatus.model_fields.items()}


def reconcile(ctx: Context, body: dict[str, Any], rayjob: dict[str, Any] | _Read | None = READ) -> None:
    """Bring one SpeedrunJob forward: accept it and create its RayJob, or follow the RayJob (as given by
    an event, None when it was deleted, else read), and publish the results once it succeeded."""
    with ctx.memory.lock(body["metadata"].get("uid", "")):
        body = ctx.memory.fresher(body)
        old = stored_status(body)
        _observe_gauges(body, old)
        if old.settled:
            return
        _write(ctx, body, old, _decide(ctx, body, old, rayjob, now_rfc3339()))


def _decide(
    ctx: Context,
    body: dict[str, Any],
    old: SpeedrunJobStatus,
    rayjob: dict[str, Any] | _Read | None,
    now: str,
) -> Decision:
    if not old.ray_job_name:
        return _start(ctx, body, old, now)
    if old.phase == Phase.SUCCEEDED:
        return _publish(ctx, body, old, now)
    if isinstance(rayjob, _Read) or (rayjob is not None and rayjob["metadata"]["name"] != old.ray_job_name):
        rayjob = ctx.cluster.get_rayjob(_namespace(body), old.ray_job_name)
    decision = _observe(ctx, body, rayjob, old, now)
    if decision.rayjob_succeeded:
        return _publish(ctx, body, decision.status, now)
    deadline = (body.get("spec") or {}).get("provisioningDeadlineSeconds")
    return past_deadline(decision.status, deadline, now=now) or decision


def _start(ctx: Context, body: dict[str, Any], old: SpeedrunJobStatus, now: str) -> Decision:
    """Accept the spec and create the RayJob; a RayJob of ours that exists already is adopted."""
    meta = body["metadata"]
    spec, accepted = accept(body.get("spec"), old, generation=meta.get("generation"), now=now)
    if spec is None:
        return accepted
    job = SpeedrunJob(metadata=ObjectMeta(name=meta["name"], namespace=_namespace(body)), spec=spec)
    output = output_prefix(job, ctx.config)
    if output is None:
        return reject(accepted.status, *NO_OUTPUT, now=now)
    logs = OutputLayout(output=output, job=job.name).logs
    desired = build_rayjob(job, meta["uid"], ctx.config, restricted=_restricted(ctx, job.namespace))
    name = desired["metadata"]["name"]
    try:
        ctx.cluster.create_rayjob(desired)
    except AlreadyExists:
        existing = ctx.cluster.get_rayjob(job.namespace, name)
        if existing is None or not _owned_by(existing, meta["uid"]):
            return reject(accepted.status, *name_conflict(name), now=now)
        # Created by an earlier pass (an operator killed before it wrote the status): catch up at once.
        adopted = created(accepted.status, name, logs_url=logs, now=now).status
        return _observe(ctx, body, existing, adopted, now)
    return created(accepted.status, name, logs_url=logs, now=now)


def _restricted(ctx: Context, namespace: str) -> bool:
    known = ctx.view.restricted(namespace)
    if known is None:
        ctx.view.saw_namespace(namespace, ctx.cluster.namespace_labels(namespace))
        known = bool(ctx.view.restricted(namespace))
    return known


def _observe(
    ctx: Context, body: dict[str, Any], rayjob: dict[str, Any] | None, status: SpeedrunJobStatus, now: str
) -> Decision:
    spec = body.get("spec") or {}
    queued = bool(spec.get("queueName"))
    name = status.ray_job_name
    return observed(
        rayjob,
        status,
        suspended_by_user=bool(spec.get("suspend")),
        queued=queued,
        now=now,
        blocker=ctx.view.blocker((_namespace(body), body["metadata"]["name"])),
        queue=ctx.view.workload(_namespace(body), name) if queued and name else None,
    )


def deadline_due(body: dict[str, Any]) -> bool:
    """Whether a waiting job's provisioning deadline has passed (decided in memory, for the timer)."""
    deadline = (body.get("spec") or {}).get("provisioningDeadlineSeconds")
    return past_deadline(stored_status(body), deadline, now=now_rfc3339()) is not None


def _publish(ctx: Context, body: dict[str, Any], status: SpeedrunJobStatus, now: str) -> Decision:
    url = _layout(ctx, body).results
    try:
        found = results.results_from_json(ctx.cluster.read_text(url), url)
    except (OSError, ValueError) as exc:
        failure = _layout(ctx, body).failure
        try:
            return results.trainer_failed(status, ctx.cluster.read_text(failure), failure, now=now)
        except OSError:
            return results.unreadable(status, url, exc, now=now)
    return results.published(status, found, now=now)


def _layout(ctx: Context, body: dict[str, Any]) -> OutputLayout:
    spec = SpeedrunJobSpec.model_validate(body.get("spec") or {}, by_alias=True, by_name=False)
    job = SpeedrunJob(
        metadata=ObjectMeta(name=body["metadata"]["name"], namespace=_namespace(body)), spec=spec
    )
    return OutputLayout(output=output_prefix(job, ctx.config) or "", job=job.name)


def suspend_changed(ctx: Context, body: dict[str, Any], suspend: bool) -> None:
    """Pass spec.suspend on: to the RayJob (KubeRay tears the cluster down or brings it back), or for a
    queued run to Kueue, which owns its RayJob's suspend (``edits.suspend_patches``)."""
    with ctx.memory.lock(body["metadata"].get("uid", "")):
        body = ctx.memory.fresher(body)
        old = stored_status(body)
        if not old.ray_job_name or old.phase.terminal:
            return
        namespace = _namespace(body)
        queue = (body.get("spec") or {}).get("queueName")
        workload = ctx.view.workload(namespace, old.ray_job_name) if queue else None
        patches = edits.suspend_patches(suspend, queue, workload.name if workload else None)
        if patches.workload is not None and workload is not None:
            ctx.cluster.patch_workload(namespace, workload.name, patches.workload)
        if patches.rayjob is not None:
            ctx.cluster.patch_rayjob(namespace, old.ray_job_name, patches.rayjob)
        _write(ctx, body, old, edits.suspend_passed_on(old, generation=body["metadata"].get("generation")))


def spec_changed(ctx: Context, body: dict[str, Any], changed_fields: list[str]) -> None:
    """A spec edit after the RayJob exists is not applied; it is reported on the object."""
    with ctx.memory.lock(body["metadata"].get("uid", "")):
        body = ctx.memory.fresher(body)
        old = stored_status(body)
        if not old.ray_job_name:
            return
        decision = edits.spec_drifted(
            old, changed_fields, generation=body["metadata"].get("generation"), now=now_rfc3339()
        )
        _write(ctx, body, old, decision)


def _write(ctx: Context, body: dict[str, Any], old: SpeedrunJobStatus, decision: Decision) -> None:
    """The one writer of the operator's status fields (never progress, which the trainer writes), then
    what follows from the change: metrics, events, a log line."""
    new = decision.status
    namespace, name = _namespace(body), body["metadata"]["name"]
    after = new.model_dump(mode="json", exclude_none=True, exclude={"progress"})
    before = old.model_dump(mode="json", exclude_none=True, exclude={"progress"})
    changed = {key: value for key, value in after.items() if before.get(key) != value}
    # A field the decision cleared (a queued run's admission once preempted) goes: null in a merge patch.
    changed.update({key: None for key in before if key not in after})
    if changed:
        ctx.memory.remember(ctx.cluster.patch_status(namespace, name, changed))
    if decision.teardown and new.ray_job_name:
        ctx.cluster.delete_rayjob(namespace, new.ray_job_name)
    _observe_gauges(body, new)
    moved = transition(old, new)
    if moved is not None:
        metrics.TRANSITIONS.labels(from_phase=moved.old.value, to_phase=moved.new.value).inc()
        _measure(body, old, new)
        text = f"{moved.old.value} -> {moved.new.value}: {moved.message}"
        ctx.cluster.post_event(
            body, "Warning" if moved.warning else "Normal", moved.reason or moved.new.value, text
        )
        logger.info("[%s/%s] %s", namespace, name, text)
    for note in decision.notes:
        ctx.cluster.post_event(body, note.type, note.reason, note.message)
    if new.results is not None and old.results is None:
        spec = body.get("spec") or {}
        author = (spec.get("author") or {}).get("name", "")
        metrics.record_results(namespace, name, author, new.accelerator or "", new.results)


def _observe_gauges(body: dict[str, Any], status: SpeedrunJobStatus) -> None:
    metrics.observe_job(_namespace(body), body["metadata"]["name"], status.phase.value, status.progress)


def _measure(body: dict[str, Any], old: SpeedrunJobStatus, new: SpeedrunJobStatus) -> None:
    if new.phase == Phase.RUNNING and old.phase != Phase.RUNNING:
        created_at = body["metadata"].get("creationTimestamp")
        if created_at:
            started = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
            metrics.TIME_TO_RUNNING.observe((datetime.now(UTC) - started).total_seconds())
        if new.run_info:
            # Exposed at 0 while it runs, so the hours added when it ends are an increase to Prometheus.
            metrics.ACCELERATOR_HOURS.labels(accelerator=new.run_info.device_type)
    running = find(old.conditions, ConditionType.RUNNING)
    if new.phase.terminal and running is not None and running.status == "True" and old.run_info:
        since = datetime.fromisoformat(running.last_transition_time.replace("Z", "+00:00"))
        hours = (datetime.now(UTC) - since).total_seconds() / 3600 * old.run_info.num_chips
        metrics.ACCELERATOR_HOURS.labels(accelerator=old.run_info.device_type).inc(hours)


def _namespace(body: dict[str, Any]) -> str:
    namespace: str = body["metadata"].get("namespace") or "default"
    return namespace


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj.get("metadata", {}).get("ownerReferences", []))
