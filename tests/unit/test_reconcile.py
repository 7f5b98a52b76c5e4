"""One reconcile pass of one SpeedrunJob: read what it needs, decide, write the status at most once, announce.

Runs against a fake of the operator's API calls (``reconcile.Cluster``), in memory: every path a real
cluster takes (create, adopt, conflict, deletion, success and its results) without one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY

from speedrun_operator.api import Phase
from speedrun_operator.config import OperatorConfig
from speedrun_operator.contract import OutputLayout
from speedrun_operator.reconcile import (
    AlreadyExists,
    Context,
    deadline_due,
    reconcile,
    spec_changed,
    suspend_changed,
)
from speedrun_operator.status.blockers import Blocker
from speedrun_operator.status.queue import QueueState

pytestmark = pytest.mark.unit

UID = "0f3c9d6e-1111-2222-3333-444455556666"
OUTPUT = "gs://speedruns/runs"
RESULTS_URL = f"{OUTPUT}/tiny/speedrun_results.json"
SPEC = {
    "author": {"name": "Ada"},
    "description": "a tiny run",
    "model": {"preset": "llama_nano"},
    "train": {"batchSize": 8, "steps": 10, "learningRate": 0.01},
    "resources": {"gpu": {"type": "A100", "count": 1}},
}


@dataclass
class FakeCluster:
    """The API server as far as the operator reaches it; records every call it takes."""

    rayjobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    version: int = 100
    calls: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)

    def get_rayjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(f"get rayjob {name}")
        return self.rayjobs.get(name)

    def create_rayjob(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        self.calls.append(f"create rayjob {name}")
        if name in self.rayjobs:
            raise AlreadyExists(name)
        self.rayjobs[name] = body

    def patch_rayjob(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(f"patch rayjob {name}")
        self.rayjobs[name]["spec"].update(patch.get("spec", {}))
        labels = self.rayjobs[name]["metadata"].setdefault("labels", {})
        for key, value in patch.get("metadata", {}).get("labels", {}).items():
            if value is None:
                labels.pop(key, None)
            else:
                labels[key] = value

    def patch_workload(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(f"patch workload {name} {json.dumps(patch, sort_keys=True)}")

    def delete_rayjob(self, namespace: str, name: str) -> None:
        self.calls.append(f"delete rayjob {name}")
        self.rayjobs.pop(name, None)

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        self.calls.append(f"get namespace {namespace}")
        return self.namespaces.get(namespace, {})

    def get_speedrunjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        raise AssertionError("reconcile reads the SpeedrunJob from the body it is given")

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"patch status {sorted(status)}")
        self.status = {**self.status, **status}
        self.version += 1
        return stored(self.status, self.version)

    def post_event(self, job: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def read_text(self, url: str) -> str:
        if url not in self.files:
            raise FileNotFoundError(url)
        return self.files[url]

    @property
    def writes(self) -> list[str]:
        return [call for call in self.calls if call.startswith("patch status")]


def stored(status: dict[str, Any] | None = None, version: int = 100, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "tiny",
            "namespace": "team-a",
            "uid": UID,
            "generation": 1,
            "resourceVersion": str(version),
            "creationTimestamp": "2026-12-01T00:00:00Z",
        },
        "spec": {**SPEC, **spec},
        "status": status or {},
    }


def context(cluster: FakeCluster, **config: Any) -> Context:
    ctx = Context(cluster=cluster, config=OperatorConfig(**{"default_output": OUTPUT, **config}))
    ctx.view.saw_namespace("team-a", {})
    return ctx


def rayjob_with(deployment: str, job: str = "", *, owner: str = UID, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "srj-tiny", "ownerReferences": [{"kind": "SpeedrunJob", "uid": owner}]},
        "spec": {"suspend": False},
        "status": {
            "jobDeploymentStatus": deployment,
            "jobStatus": job,
            "rayClusterName": "srj-tiny-x",
            **extra,
        },
    }


def results_document(bpb: float = 1.2345678) -> str:
    info = {
        "eval/paloma/c4_en/bpb": bpb,
        "training_time": 12.0,
        "training_hardware_flops": 12.0 * 312e12,
        "model_flops": 1e15,
        "total_tokens": 40960,
        "run_completion_timestamp": "2026-12-01 00:10:00 UTC",
    }
    return json.dumps({"runs": [{"run_info": info}]})


def created_job(cluster: FakeCluster) -> dict[str, Any]:
    """The SpeedrunJob as stored after its first pass (RayJob created)."""
    reconcile(context(cluster), stored())
    return stored(cluster.status, cluster.version)


def test_a_new_job_is_accepted_and_its_rayjob_created_with_one_status_write_and_one_event() -> None:
    cluster = FakeCluster()
    reconcile(context(cluster), stored())
    assert [c for c in cluster.calls if not c.startswith("patch status")] == ["create rayjob srj-tiny"]
    assert len(cluster.writes) == 1
    assert cluster.status["phase"] == Phase.PROVISIONING
    assert cluster.status["reason"] == "RayJobCreated"
    assert cluster.status["rayJobName"] == "srj-tiny"
    assert cluster.status["runInfo"]["numChips"] == 1
    owner = cluster.rayjobs["srj-tiny"]["metadata"]["ownerReferences"][0]
    assert owner["uid"] == UID
    assert [(t, r) for t, r, _ in cluster.events] == [("Normal", "RayJobCreated")]


def test_the_status_links_the_logs_the_trainer_keeps_under_the_jobs_own_output_or_the_default() -> None:
    cluster = FakeCluster()
    reconcile(context(cluster), stored())
    assert cluster.status["logsUrl"] == OutputLayout(output=OUTPUT, job="tiny").logs
    cluster = FakeCluster()
    reconcile(context(cluster), stored(output="s3://own/runs"))
    assert cluster.status["logsUrl"] == "s3://own/runs/tiny/logs"


def test_an_invalid_spec_fails_for_good_without_creating_anything() -> None:
    cluster = FakeCluster()
    bad = stored()
    bad["spec"]["train"] = {"batchSize": 0, "steps": 10, "learningRate": 0.01}
    reconcile(context(cluster), bad)
    assert cluster.rayjobs == {}
    assert (cluster.status["phase"], cluster.status["reason"]) == (Phase.FAILED, "InvalidSpec")
    assert "spec.train.batchSize" in cluster.status["message"]
    assert cluster.events[0][:2] == ("Warning", "InvalidSpec")
    reconcile(context(cluster), stored(cluster.status, cluster.version))
    assert len(cluster.writes) == 1, "a failed job is settled: nothing more is written"


def test_a_job_with_no_output_anywhere_fails_with_the_fix() -> None:
    cluster = FakeCluster()
    reconcile(context(cluster, default_output=None), stored())
    assert cluster.rayjobs == {}
    assert (cluster.status["phase"], cluster.status["reason"]) == (Phase.FAILED, "NoOutput")
    assert "set spec.output" in cluster.status["message"]
    assert cluster.status["runInfo"]["parameters"] > 0, "the accepted run info stays for the user to read"


def test_a_rayjob_of_ours_that_exists_already_is_adopted_and_caught_up_in_the_same_pass() -> None:
    cluster = FakeCluster(rayjobs={"srj-tiny": rayjob_with("Running", "RUNNING")})
    reconcile(context(cluster), stored())
    assert cluster.calls[:2] == ["create rayjob srj-tiny", "get rayjob srj-tiny"]
    assert len(cluster.writes) == 1
    assert (cluster.status["phase"], cluster.status["rayJobName"]) == (Phase.RUNNING, "srj-tiny")
    assert cluster.status["rayClusterName"] == "srj-tiny-x"


def test_a_rayjob_of_that_name_owned_by_something_else_is_a_name_conflict() -> None:
    cluster = FakeCluster(rayjobs={"srj-tiny": rayjob_with("Running", "RUNNING", owner="someone-else")})
    reconcile(context(cluster), stored())
    assert (cluster.status["phase"], cluster.status["reason"]) == (Phase.FAILED, "NameConflict")
    assert "srj-tiny" in cluster.status["message"]
    assert cluster.rayjobs["srj-tiny"]["metadata"]["ownerReferences"][0]["uid"] == "someone-else"


def test_a_rayjob_event_moves_the_phase_without_reading_anything() -> None:
    cluster = FakeCluster()
    job = created_job(cluster)
    cluster.calls.clear()
    reconcile(context(cluster), job, rayjob=rayjob_with("Running", "RUNNING"))
    changed = ["conditions", "message", "phase", "rayClusterName", "reason"]
    assert cluster.calls == [f"patch status {changed}"]
    assert cluster.status["phase"] == Phase.RUNNING
    assert cluster.events[-1][1] == "Training"


def test_the_same_observation_twice_writes_nothing_the_second_time() -> None:
    cluster = FakeCluster()
    job = created_job(cluster)
    reconcile(context(cluster), job, rayjob=rayjob_with("Running", "RUNNING"))
    writes, events = len(cluster.writes), len(cluster.events)
    reconcile(
        context(cluster), stored(cluster.status, cluster.version), rayjob=rayjob_with("Running", "RUNNING")
    )
    assert (len(cluster.writes), len(cluster.events)) == (writes, events)


def test_a_body_older_than_our_own_last_write_is_not_decided_on_again() -> None:
    """kopf's index can lag the operator's own status patch: the next RayJob event must not re-create,
    re-adopt or re-announce what the last pass did."""
    cluster = FakeCluster()
    ctx = context(cluster)
    stale = stored()
    reconcile(ctx, stale)
    reconcile(ctx, stale, rayjob=rayjob_with("Running", "RUNNING"))
    assert cluster.calls.count("create rayjob srj-tiny") == 1
    assert [reason for _, reason, _ in cluster.events] == ["RayJobCreated", "Training"]


def test_a_cluster_still_starting_after_its_rayjob_was_created_tells_nothing_new() -> None:
    """KubeRay's first status updates (Initializing, the cluster's name) are the story the creation told:
    the name is noted, with no second event."""
    cluster = FakeCluster()
    job = created_job(cluster)
    reconcile(context(cluster), job, rayjob=rayjob_with("Initializing"))
    assert cluster.status["reason"] == "RayJobCreated" and cluster.status["rayClusterName"] == "srj-tiny-x"
    assert [reason for _, reason, _ in cluster.events] == ["RayJobCreated"]


def test_the_timer_reads_the_rayjob_and_reports_one_deleted_behind_our_back() -> None:
    cluster = FakeCluster()
    job = created_job(cluster)
    del cluster.rayjobs["srj-tiny"]
    reconcile(context(cluster), job)
    assert "get rayjob srj-tiny" in cluster.calls
    assert (cluster.status["phase"], cluster.status["reason"]) == (Phase.FAILED, "RayJobDeleted")
    assert cluster.calls.count("create rayjob srj-tiny") == 1, "never re-created behind the user's back"


def test_success_publishes_the_results_in_the_same_write() -> None:
    cluster = FakeCluster(files={RESULTS_URL: results_document()})
    job = created_job(cluster)
    reconcile(
        context(cluster), job, rayjob=rayjob_with("Complete", "SUCCEEDED", endTime="2026-12-01T00:10:00Z")
    )
    assert len(cluster.writes) == 2
    assert cluster.status["phase"] == Phase.SUCCEEDED
    results = cluster.status["results"]
    assert (results["evalBpb"], results["evalBpbDisplay"], results["resultsUrl"]) == (
        1.2345678,
        "1.2346",
        RESULTS_URL,
    )
    assert cluster.status["message"] == f"eval bpb 1.2346 on paloma/c4_en; results at {RESULTS_URL}"
    assert [reason for _, reason, _ in cluster.events][-2:] == ["Succeeded", "ResultsPublished"]
    reconcile(context(cluster), stored(cluster.status, cluster.version))
    assert len(cluster.writes) == 2, "a succeeded job with its results is settled"


def test_results_not_there_yet_are_retried_by_the_next_pass() -> None:
    cluster = FakeCluster()
    job = created_job(cluster)
    reconcile(context(cluster), job, rayjob=rayjob_with("Complete", "SUCCEEDED"))
    assert cluster.status["phase"] == Phase.SUCCEEDED and "results" not in cluster.status
    published = next(c for c in cluster.status["conditions"] if c["type"] == "ResultsPublished")
    assert (published["status"], published["reason"]) == ("False", "ResultsNotFound")
    assert RESULTS_URL in published["message"]

    cluster.files[RESULTS_URL] = results_document(bpb=0.9)
    cluster.calls.clear()
    reconcile(context(cluster), stored(cluster.status, cluster.version))
    assert not any(call.startswith("get rayjob") for call in cluster.calls), "a succeeded run needs no RayJob"
    assert cluster.status["results"]["evalBpb"] == 0.9


def test_a_failed_rayjob_fails_the_job_with_kuberays_reason() -> None:
    cluster = FakeCluster()
    job = created_job(cluster)
    failed = rayjob_with("Failed", "FAILED", reason="DeadlineExceeded", message="ran past 3600 s")
    reconcile(context(cluster), job, rayjob=failed)
    assert (cluster.status["phase"], cluster.status["reason"]) == (Phase.FAILED, "DeadlineExceeded")
    assert cluster.events[-1][:2] == ("Warning", "DeadlineExceeded")


def test_suspend_is_passed_on_to_the_rayjob() -> None:
    cluster = FakeCluster()
    job = created_job(cluster)
    job["metadata"]["generation"] = 2
    suspend_changed(context(cluster), job, True)
    assert cluster.rayjobs["srj-tiny"]["spec"]["suspend"] is True
    assert cluster.status["observedGeneration"] == 2


def test_a_spec_edit_after_the_start_is_reported_and_not_applied() -> None:
    cluster = FakeCluster()
    job = created_job(cluster)
    job["metadata"]["generation"] = 2
    spec_changed(context(cluster), job, ["spec.train.steps"])
    drift = next(c for c in cluster.status["conditions"] if c["type"] == "SpecDrift")
    assert drift["status"] == "True" and "spec.train.steps" in drift["message"]
    assert cluster.events[-1][:2] == ("Warning", "SpecChangedAfterStart")
    assert cluster.calls.count("create rayjob srj-tiny") == 1


def test_what_blocks_the_cluster_shows_as_the_reason_with_a_warning() -> None:
    cluster = FakeCluster()
    ctx = context(cluster)
    reconcile(ctx, stored())
    refused = Blocker("PodsRefused", 'FailedCreateHeadPod: pods "x" is forbidden: violates PodSecurity')
    ctx.view.saw_blocker(("team-a", "tiny"), "raycluster/srj-tiny-x", refused)
    reconcile(ctx, stored(cluster.status, cluster.version), rayjob=rayjob_with("Initializing"))
    assert (cluster.status["phase"], cluster.status["reason"]) == (Phase.PROVISIONING, "PodsRefused")
    assert "violates PodSecurity" in cluster.status["message"]
    ready = next(c for c in cluster.status["conditions"] if c["type"] == "ClusterReady")
    assert (ready["status"], ready["reason"]) == ("False", "PodsRefused")
    assert cluster.events[-1][:2] == ("Warning", "PodsRefused")


def test_a_job_not_running_by_its_provisioning_deadline_fails_and_its_cluster_is_torn_down() -> None:
    cluster = FakeCluster()
    ctx = context(cluster)
    reconcile(ctx, stored(provisioningDeadlineSeconds=30))
    job = stored(cluster.status, cluster.version, provisioningDeadlineSeconds=30)
    assert not deadline_due(job)
    ctx.view.saw_blocker(("team-a", "tiny"), "pod/srj-tiny-head", Blocker("Unschedulable", "0/3 nodes fit"))
    cluster.rayjobs["srj-tiny"] = rayjob_with("Initializing")
    reconcile(ctx, job, rayjob=rayjob_with("Initializing"))
    late = stored(
        {**cluster.status, "startTime": "2026-12-01T00:00:00Z"},
        cluster.version,
        provisioningDeadlineSeconds=30,
    )
    assert deadline_due(late)
    reconcile(ctx, late)
    assert (cluster.status["phase"], cluster.status["reason"]) == (
        Phase.FAILED,
        "ProvisioningDeadlineExceeded",
    )
    assert "Unschedulable: the Ray cluster cannot start: 0/3 nodes fit" in cluster.status["message"]
    assert cluster.calls[-1] == "delete rayjob srj-tiny" and "srj-tiny" not in cluster.rayjobs


def test_a_job_that_ran_once_has_no_provisioning_deadline_any_more() -> None:
    cluster = FakeCluster()
    ctx = context(cluster)
    reconcile(ctx, stored(provisioningDeadlineSeconds=30))
    reconcile(ctx, stored(cluster.status, cluster.version), rayjob=rayjob_with("Running", "RUNNING"))
    retrying = rayjob_with("Retrying", failed=1)
    reconcile(ctx, stored(cluster.status, cluster.version), rayjob=retrying)
    late = stored(
        {**cluster.status, "startTime": "2026-12-01T00:00:00Z"},
        cluster.version,
        provisioningDeadlineSeconds=30,
    )
    assert not deadline_due(late)


def test_in_a_namespace_enforcing_restricted_the_rayjob_is_submitted_by_a_hardened_pod() -> None:
    cluster = FakeCluster()
    ctx = context(cluster)
    ctx.view.saw_namespace("team-a", {"pod-security.kubernetes.io/enforce": "restricted"})
    reconcile(ctx, stored())
    spec = cluster.rayjobs["srj-tiny"]["spec"]
    assert spec["submissionMode"] == "K8sJobMode"
    submitter = spec["submitterPodTemplate"]["spec"]["containers"][0]
    assert submitter["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_a_namespace_the_watch_has_not_shown_yet_is_read_once() -> None:
    cluster = FakeCluster(namespaces={"team-a": {"pod-security.kubernetes.io/enforce": "restricted"}})
    ctx = Context(cluster=cluster, config=OperatorConfig(default_output=OUTPUT))
    reconcile(ctx, stored())
    assert cluster.calls[0] == "get namespace team-a"
    assert cluster.rayjobs["srj-tiny"]["spec"]["submissionMode"] == "K8sJobMode"
    assert ctx.view.restricted("team-a") is True


def test_a_job_entering_running_exposes_its_accelerators_hours_at_zero_so_its_end_is_an_increase() -> None:
    cluster = FakeCluster()
    resources = {"gpu": {"type": "A40", "count": 1}}  # a type no other test of this process runs
    reconcile(context(cluster), stored(resources=resources))
    job = stored(cluster.status, cluster.version, resources=resources)
    reconcile(context(cluster), job, rayjob=rayjob_with("Running", "RUNNING"))
    assert cluster.status["phase"] == Phase.RUNNING
    assert REGISTRY.get_sample_value("speedrun_accelerator_hours_total", {"accelerator": "A40"}) == 0.0


def queued_job(cluster: FakeCluster, ctx: Context) -> dict[str, Any]:
    reconcile(ctx, stored(queueName="team-a"))
    return stored(cluster.status, cluster.version, queueName="team-a")


PENDING_WORKLOAD = QueueState("rayjob-srj-tiny-abc", reason="Pending", message="insufficient unused quota")


def test_a_queued_job_shows_what_kueues_workload_says_from_the_view() -> None:
    cluster = FakeCluster()
    ctx = context(cluster)
    job = queued_job(cluster, ctx)
    ctx.view.saw_workload("team-a", "srj-tiny", PENDING_WORKLOAD)
    reconcile(ctx, job, rayjob={**rayjob_with("Suspended"), "spec": {"suspend": True}})
    assert (cluster.status["phase"], cluster.status["reason"]) == (Phase.QUEUED, "WaitingForAdmission")
    assert "insufficient unused quota" in cluster.status["message"]


def test_suspending_a_queued_job_deactivates_its_workload_and_leaves_the_rayjob_to_kueue() -> None:
    cluster = FakeCluster()
    ctx = context(cluster)
    job = queued_job(cluster, ctx)
    ctx.view.saw_workload("team-a", "srj-tiny", PENDING_WORKLOAD)
    cluster.calls.clear()
    suspend_changed(ctx, job, True)
    suspend_changed(ctx, job, False)
    assert [c for c in cluster.calls if not c.startswith("patch status")] == [
        'patch workload rayjob-srj-tiny-abc {"spec": {"active": false}}',
        'patch workload rayjob-srj-tiny-abc {"spec": {"active": true}}',
        "patch rayjob srj-tiny",
    ]
    assert cluster.rayjobs["srj-tiny"]["spec"]["suspend"] is True, "only Kueue unsuspends a queued RayJob"


def test_a_preempted_job_loses_its_admission_on_the_stored_status() -> None:
    cluster = FakeCluster()
    ctx = context(cluster)
    job = queued_job(cluster, ctx)
    admitted = QueueState("wl", admitted=True, cluster_queue="gpus", flavors={"gpu-a100": "a100"})
    ctx.view.saw_workload("team-a", "srj-tiny", admitted)
    reconcile(ctx, job, rayjob=rayjob_with("Running", "RUNNING"))
    assert cluster.status["admission"]["clusterQueue"] == "gpus"
    ctx.view.saw_workload("team-a", "srj-tiny", QueueState("wl", reason="Preempted", preempted=True))
    job = stored(cluster.status, cluster.version, queueName="team-a")
    reconcile(ctx, job, rayjob={**rayjob_with("Suspending"), "spec": {"suspend": True}})
    assert cluster.status["reason"] == "Preempted" and cluster.status["preemptions"] == 1
    assert cluster.status["admission"] is None, "cleared with null in the merge patch"
