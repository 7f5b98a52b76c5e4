"""What the operator does for one SpeedrunJob, free of kopf: accept, create or adopt its RayJob, sync status.

Handlers in ``handlers/`` are thin adapters that call these functions. Every step is idempotent and keyed on
deterministic names, so an operator killed at any point converges on restart without duplicating anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from speedrun_operator import kube, metrics, storage
from speedrun_operator.api import (
    ConditionType,
    ObjectMeta,
    Phase,
    SpeedrunJob,
    SpeedrunJobSpec,
    SpeedrunJobStatus,
)
from speedrun_operator.builders import build_rayjob, rayjob_name
from speedrun_operator.builders.pods import output_prefix
from speedrun_operator.config import OperatorConfig
from speedrun_operator.status.accept import accept
from speedrun_operator.status.conditions import FAILED_ACCEPTANCE, find, set_condition
from speedrun_operator.status.observe import TERMINAL_PHASES, Transition, observe_rayjob
from speedrun_operator.status.results import results_from_json

EventSink = Callable[[dict[str, Any], str, str, str], None]
"""(SpeedrunJob body, event type Normal|Warning, reason, message) -> posts a Kubernetes Event."""


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_of(body: dict[str, Any]) -> SpeedrunJobStatus:
    """The status as stored; the job's gauges are refreshed from it, so they are right after a restart too."""
    raw = body.get("status") or {}
    known = {key: value for key, value in raw.items() if key in _STATUS_ALIASES}
    status = SpeedrunJobStatus.model_validate(known)
    meta = body["metadata"]
    metrics.observe_job(meta.get("namespace", "default"), meta["name"], status.phase.value, status.progress)
    return status


_STATUS_ALIASES = {field.alias or name for name, field in SpeedrunJobStatus.model_fields.items()}


def _where(body: dict[str, Any]) -> str:
    return f"{body['metadata'].get('namespace', 'default')}/{body['metadata']['name']}"


def _write_status(body: dict[str, Any], status: SpeedrunJobStatus, old: SpeedrunJobStatus) -> None:
    """Patch only what the operator owns (never progress, which the trainer writes)."""
    new = status.model_dump(mode="json", exclude_none=True, exclude={"progress"})
    before = old.model_dump(mode="json", exclude_none=True, exclude={"progress"})
    changed = {key: value for key, value in new.items() if before.get(key) != value}
    if not changed:
        return
    meta = body["metadata"]
    kube.patch_speedrunjob_status(meta.get("namespace", "default"), meta["name"], changed)
    metrics.observe_job(meta.get("namespace", "default"), meta["name"], status.phase.value, status.progress)


def _announce(body: dict[str, Any], transition: Transition | None, events: EventSink) -> None:
    if transition is None:
        return
    metrics.TRANSITIONS.labels(from_phase=transition.old.value, to_phase=transition.new.value).inc()
    events(
        body,
        "Warning" if transition.warning else "Normal",
        transition.reason or transition.new.value,
        f"{transition.old.value} -> {transition.new.value}: {transition.message}",
    )
    logging.getLogger(__name__).info(
        "%s: %s -> %s (%s)", _where(body), transition.old.value, transition.new.value, transition.reason
    )


def ensure_rayjob(body: dict[str, Any], config: OperatorConfig, events: EventSink) -> None:
    """Accept a SpeedrunJob and make sure its one RayJob exists — once. Never re-creates a deleted RayJob."""
    meta = body["metadata"]
    namespace, name = meta.get("namespace", "default"), meta["name"]
    old = _status_of(body)
    if old.phase in TERMINAL_PHASES:
        return
    if old.ray_job_name:
        sync_from_rayjob(body, config, events)
        return
    now = now_rfc3339()
    spec, status = accept(body.get("spec"), old, generation=meta.get("generation"), now=now)
    if spec is None:
        _write_status(body, status, old)
        _announce(body, Transition(old.phase, Phase.FAILED, "InvalidSpec", status.message or ""), events)
        return
    job = SpeedrunJob(metadata=ObjectMeta(name=name, namespace=namespace), spec=spec)
    if output_prefix(job, config) is None:
        _reject(
            body,
            old,
            status,
            "NoOutput",
            "spec.output is not set and the operator has no default output "
            "prefix; set spec.output to a gs:// or s3:// URL",
            events,
        )
        return
    desired = build_rayjob(job, meta["uid"], config)
    try:
        kube.create_rayjob(desired)
        events(body, "Normal", "RayJobCreated", f"created RayJob {desired['metadata']['name']}")
    except ApiException as exc:
        if exc.status != 409:
            raise
        existing = kube.get_rayjob(namespace, desired["metadata"]["name"])
        if existing is None or not _owned_by(existing, meta["uid"]):
            _reject(
                body,
                old,
                status,
                "NameConflict",
                f"a RayJob named {desired['metadata']['name']} already "
                "exists and does not belong to this SpeedrunJob; delete it or rename the SpeedrunJob",
                events,
            )
            return
    status.ray_job_name = desired["metadata"]["name"]
    status.start_time = status.start_time or now
    status.phase, status.reason, status.message = (
        Phase.PROVISIONING,
        "RayJobCreated",
        "creating the Ray cluster",
    )
    status.conditions = set_condition(
        status.conditions,
        ConditionType.CLUSTER_READY,
        "False",
        "ClusterStarting",
        "Ray head and workers are starting",
        now=now,
        generation=meta.get("generation"),
    )
    _write_status(body, status, old)
    _announce(
        body, Transition(old.phase, status.phase, "RayJobCreated", f"RayJob {status.ray_job_name}"), events
    )
    sync_from_rayjob({**body, "status": status.model_dump(mode="json", exclude_none=True)}, config, events)


def _reject(
    body: dict[str, Any],
    old: SpeedrunJobStatus,
    status: SpeedrunJobStatus,
    reason: str,
    message: str,
    events: EventSink,
) -> None:
    now = now_rfc3339()
    generation = body["metadata"].get("generation")
    status.phase, status.reason, status.message = Phase.FAILED, reason, message
    status.completion_time = now
    for type_, value in FAILED_ACCEPTANCE:
        status.conditions = set_condition(
            status.conditions,
            type_,
            value,
            reason,
            message,
            now=now,
            generation=generation,
        )
    _write_status(body, status, old)
    _announce(body, Transition(old.phase, Phase.FAILED, reason, message), events)


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj.get("metadata", {}).get("ownerReferences", []))


def sync_from_rayjob(
    body: dict[str, Any], config: OperatorConfig, events: EventSink, rayjob: dict[str, Any] | None = None
) -> None:
    """Bring a SpeedrunJob's status in line with its RayJob (read unless given), and publish its results."""
    namespace = body["metadata"].get("namespace", "default")
    old = _status_of(body)
    if not old.ray_job_name:
        return
    if old.phase in TERMINAL_PHASES:
        if old.phase == Phase.SUCCEEDED and old.results is None:
            _publish_results(body, old, old.model_copy(deep=True), config, events)
        return
    spec_data = body.get("spec") or {}
    if rayjob is None or rayjob["metadata"]["name"] != old.ray_job_name:
        rayjob = kube.get_rayjob(namespace, old.ray_job_name)
    observation = observe_rayjob(
        rayjob,
        old,
        suspended_by_user=bool(spec_data.get("suspend")),
        queued=bool(spec_data.get("queueName")),
        generation=old.observed_generation,
        now=now_rfc3339(),
    )
    status = observation.status
    if observation.transition is not None:
        _measure(body, old, status)
    if observation.rayjob_succeeded:
        _publish_results(body, old, status, config, events)
    else:
        _write_status(body, status, old)
    _announce(body, observation.transition, events)


def _measure(body: dict[str, Any], old: SpeedrunJobStatus, status: SpeedrunJobStatus) -> None:
    if status.phase == Phase.RUNNING and old.phase != Phase.RUNNING:
        created = body["metadata"].get("creationTimestamp")
        if created:
            started = datetime.fromisoformat(created.replace("Z", "+00:00"))
            metrics.TIME_TO_RUNNING.observe((datetime.now(UTC) - started).total_seconds())
    running = find(old.conditions, ConditionType.RUNNING)
    if status.phase in TERMINAL_PHASES and running is not None and running.status == "True" and old.run_info:
        since = datetime.fromisoformat(running.last_transition_time.replace("Z", "+00:00"))
        hours = (datetime.now(UTC) - since).total_seconds() / 3600 * old.run_info.num_chips
        metrics.ACCELERATOR_HOURS.labels(accelerator=old.run_info.device_type).inc(hours)


def _publish_results(
    body: dict[str, Any],
    old: SpeedrunJobStatus,
    status: SpeedrunJobStatus,
    config: OperatorConfig,
    events: EventSink,
) -> None:
    meta = body["metadata"]
    namespace, name = meta.get("namespace", "default"), meta["name"]
    now = now_rfc3339()
    spec = SpeedrunJobSpec.model_validate(body.get("spec") or {}, by_alias=True, by_name=False)
    prefix = output_prefix(
        SpeedrunJob(metadata=ObjectMeta(name=name, namespace=namespace), spec=spec), config
    )
    url = storage.results_url(prefix or "", name)
    try:
        results = results_from_json(storage.read_text(url), url)
    except (OSError, ValueError) as exc:
        status.conditions = set_condition(
            status.conditions,
            ConditionType.RESULTS_PUBLISHED,
            "False",
            "ResultsNotFound",
            f"cannot read {url} yet ({type(exc).__name__}: {exc}); retrying",
            now=now,
            generation=status.observed_generation,
        )
        _write_status(body, status, old)
        return
    status.results = results
    measured = (
        f"eval bpb {results.eval_bpb_display} on {results.eval_set}"
        if results.eval_bpb_display
        else "no eval bpb recorded"
    )
    status.message = f"{measured}; results at {url}"
    status.conditions = set_condition(
        status.conditions,
        ConditionType.RESULTS_PUBLISHED,
        "True",
        "ResultsPublished",
        f"results at {url}",
        now=now,
        generation=status.observed_generation,
    )
    _write_status(body, status, old)
    metrics.record_results(namespace, name, spec.author.name, spec.resources.describe(), results)
    events(body, "Normal", "ResultsPublished", status.message)


def apply_suspend(body: dict[str, Any], suspend: bool) -> None:
    """Pass spec.suspend on to the RayJob; KubeRay tears the cluster down or brings it back."""
    meta = body["metadata"]
    old = _status_of(body)
    if not old.ray_job_name or old.phase in TERMINAL_PHASES:
        return
    kube.patch_rayjob(meta.get("namespace", "default"), old.ray_job_name, {"spec": {"suspend": suspend}})
    status = old.model_copy(deep=True)
    status.observed_generation = meta.get("generation")
    _write_status(body, status, old)


def report_spec_drift(body: dict[str, Any], changed_fields: list[str], events: EventSink) -> None:
    """A spec edit after the RayJob exists is not applied; say so on the object, where the user looks."""
    meta = body["metadata"]
    old = _status_of(body)
    if not old.ray_job_name:
        return
    status = old.model_copy(deep=True)
    message = (
        f"spec changed ({', '.join(changed_fields)}) at generation {meta.get('generation')} after the run "
        f"was created from generation {old.observed_generation}; the running job is unchanged. Delete and "
        "re-apply the SpeedrunJob to run the new spec"
    )
    status.conditions = set_condition(
        status.conditions,
        ConditionType.SPEC_DRIFT,
        "True",
        "SpecChangedAfterStart",
        message,
        now=now_rfc3339(),
        generation=meta.get("generation"),
    )
    _write_status(body, status, old)
    events(body, "Warning", "SpecChangedAfterStart", message)


def rayjob_name_for(body: dict[str, Any]) -> str:
    return rayjob_name(body["metadata"]["name"])
