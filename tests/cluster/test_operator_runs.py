"""SpeedrunJobs through the real operator, the real KubeRay operator and the real scheduler on kwok pools.

On kwok's fake pods no Ray dashboard answers, so where a test needs the Ray job itself to run, succeed or fail
it reports that on the RayJob's status as KubeRay would (fixtures.speedrunjobs.set_rayjob_status).
"""

from __future__ import annotations

import json
from typing import Any

import fsspec
import pytest

from fixtures.operator import OperatorProcess
from fixtures.speedrunjobs import (
    ADMITTED_BUT_INVALID_FIELD,
    ADMITTED_BUT_INVALID_FIX,
    ADMITTED_BUT_INVALID_TRAIN,
    apply,
    condition,
    example_manifest,
    field_managers,
    marin_results_json,
    phase_is,
    pods_on_nodes,
    rayjobs,
    set_rayjob_status,
    srj,
    wait_srj,
)
from fixtures.storage import GcsEmulator
from harness.cluster import wait_for
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.cluster

GPU_LABEL = "cloud.google.com/gke-accelerator"
TPU_LABEL = "cloud.google.com/gke-tpu-accelerator"
TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
# The operator's kopf records (handlers/startup.py): a handler's progress while it is pending or retried,
# the configuration it last handled once every handler is done, and kopf's brand on the prefix.
KOPF_PREFIX = "speedrun.marin.community/"
LAST_HANDLED = KOPF_PREFIX + "last-handled-configuration"
KOPF_MANAGED = KOPF_PREFIX + "kopf-managed"


def provisioned(cluster: ClusterFixture, namespace: str, name: str) -> dict[str, Any]:
    """Wait until the SpeedrunJob is Provisioning with its RayJob created and accepted by KubeRay's CRD."""
    job = wait_srj(
        cluster,
        namespace,
        name,
        lambda s: s.get("phase") == "Provisioning" and "rayJobName" in s,
        "Provisioning with a RayJob",
    )
    assert [r["metadata"]["name"] for r in rayjobs(cluster, namespace)] == [job["status"]["rayJobName"]]
    return job


def operator_done_with(cluster: ClusterFixture, namespace: str, name: str) -> dict[str, Any]:
    """Wait until kopf has handled the SpeedrunJob to the end: the configuration it handled is recorded and no
    handler's progress (a pending or retried handler) is left. From then on only a new event or the resync
    timer can make the operator act on it, and the timer does not run for a Failed job."""

    def done() -> dict[str, Any] | None:
        job = srj(cluster, namespace, name)
        records = {key for key in job["metadata"].get("annotations", {}) if key.startswith(KOPF_PREFIX)}
        return job if LAST_HANDLED in records and records <= {LAST_HANDLED, KOPF_MANAGED} else None

    job: dict[str, Any] = wait_for(done, what=f"the operator done with {namespace}/{name}", timeout=60)
    return job


def running_cluster_pods(cluster: ClusterFixture, namespace: str, rayjob: str, workers: int) -> list[Any]:
    """Wait for KubeRay's RayCluster and for the scheduler to bind and kwok to run head + workers."""

    def ready() -> list[Any] | None:
        status = cluster.get("rayjobs.ray.io", rayjob, namespace)["status"]  # type: ignore[index]
        pairs = pods_on_nodes(cluster, namespace, f"ray.io/cluster={status['rayClusterName']}")
        running = [p for p in pairs if p[0]["status"].get("phase") == "Running"]
        return running if len(running) == workers + 1 else None

    pairs: list[Any] = wait_for(ready, what=f"head + {workers} workers of {rayjob} Running", timeout=120)
    return [(pod, node) for pod, node in pairs if pod["metadata"]["labels"]["ray.io/node-type"] == "worker"]


def test_gpu_example_runs_on_the_a100_pool_and_succeeds_with_results(
    operator: OperatorProcess, gcs_emulator: GcsEmulator, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    name = "hello-a100"
    apply(cluster, cluster_namespace, example_manifest("marin-hello-world-a100.yaml", name=name))
    job = provisioned(cluster, cluster_namespace, name)
    status = job["status"]
    assert status["accelerator"] == "1xA100"
    assert status["runInfo"]["parameters"] == 8_241_312 and status["runInfo"]["numChips"] == 1
    assert condition(status, "Accepted")["status"] == "True"  # type: ignore[index]

    workers = running_cluster_pods(cluster, cluster_namespace, status["rayJobName"], workers=1)
    for pod, node in workers:
        assert node["metadata"]["labels"][GPU_LABEL] == "nvidia-tesla-a100"
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    job = wait_srj(cluster, cluster_namespace, name, lambda s: "rayClusterName" in s, "the RayCluster's name")

    set_rayjob_status(
        cluster,
        cluster_namespace,
        status["rayJobName"],
        {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"},
    )
    job = wait_srj(cluster, cluster_namespace, name, phase_is("Running"), "Running")
    assert condition(job["status"], "Running")["status"] == "True"  # type: ignore[index]
    assert job["status"]["rayClusterName"].startswith(status["rayJobName"])

    with fsspec.open(gcs_emulator.url("runs", name, "speedrun_results.json"), "w") as handle:
        handle.write(marin_results_json(1.234))
    set_rayjob_status(
        cluster,
        cluster_namespace,
        status["rayJobName"],
        {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "endTime": "2026-11-25T12:00:00Z"},
    )
    job = wait_srj(cluster, cluster_namespace, name, lambda s: "results" in s, "Succeeded with results")
    status = job["status"]
    assert status["phase"] == "Succeeded"
    assert status["results"]["evalBpb"] == 1.234 and status["results"]["evalSet"] == "paloma/c4_en"
    assert status["results"]["resultsUrl"] == gcs_emulator.url("runs", name, "speedrun_results.json")
    assert condition(status, "Complete")["status"] == "True"  # type: ignore[index]
    assert condition(status, "ResultsPublished")["status"] == "True"  # type: ignore[index]

    cluster.kubectl(
        "wait", "--for=condition=Complete", f"srj/{name}", "-n", cluster_namespace, "--timeout=5s"
    )
    table = cluster.kubectl("get", "srj", name, "-n", cluster_namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "PHASE", "ACCELERATOR", "PARAMS", "PROGRESS", "BPB"]
    assert row.split()[:3] == [name, "Succeeded", "1xA100"] and "8.24M" in row and "1.234" in row
    reasons = [
        e["reason"]
        for e in cluster.objects("events", cluster_namespace, field_selector=f"involvedObject.name={name}")
    ]
    assert {"RayJobCreated", "Training", "Succeeded", "ResultsPublished"} <= set(reasons)
    # Our writes carry our name, so `kubectl get --show-managed-fields` tells them from anyone else's.
    assert "speedrun-operator" in field_managers(cluster, "srj", cluster_namespace, name, "status")
    assert "speedrun-operator" in field_managers(cluster, "rayjob", cluster_namespace, status["rayJobName"])


@pytest.mark.parametrize(
    ("example", "topology", "hosts", "chips_per_host"),
    [("tpu-v4-8.yaml", "2x2x1", 1, "4"), ("tpu-v4-16-multihost.yaml", "2x2x2", 2, "4")],
)
def test_tpu_examples_land_on_their_slice_pools(
    operator: OperatorProcess,
    cluster: ClusterFixture,
    cluster_namespace: str,
    example: str,
    topology: str,
    hosts: int,
    chips_per_host: str,
) -> None:
    name = example.removesuffix(".yaml")
    apply(cluster, cluster_namespace, example_manifest(example, name=name))
    status = provisioned(cluster, cluster_namespace, name)["status"]
    workers = running_cluster_pods(cluster, cluster_namespace, status["rayJobName"], workers=hosts)
    assert len({node["metadata"]["name"] for _, node in workers}) == hosts
    for pod, node in workers:
        labels = node["metadata"]["labels"]
        assert (labels[TPU_LABEL], labels[TOPOLOGY_LABEL]) == ("tpu-v4-podslice", topology)
        assert pod["spec"]["containers"][0]["resources"]["limits"]["google.com/tpu"] == chips_per_host
    set_rayjob_status(
        cluster,
        cluster_namespace,
        status["rayJobName"],
        {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"},
    )
    wait_srj(cluster, cluster_namespace, name, phase_is("Running"), "Running")


def test_a_failed_rayjob_fails_the_run_with_kuberays_reason(
    operator: OperatorProcess, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    name = "deadline"
    apply(cluster, cluster_namespace, example_manifest("tpu-v4-8.yaml", name=name, activeDeadlineSeconds=60))
    status = provisioned(cluster, cluster_namespace, name)["status"]
    set_rayjob_status(
        cluster,
        cluster_namespace,
        status["rayJobName"],
        {
            "jobDeploymentStatus": "Failed",
            "jobStatus": "FAILED",
            "reason": "DeadlineExceeded",
            "message": "The RayJob has passed the activeDeadlineSeconds.",
        },
    )
    job = wait_srj(cluster, cluster_namespace, name, phase_is("Failed"), "Failed")
    assert job["status"]["reason"] == "DeadlineExceeded"
    assert "activeDeadlineSeconds" in job["status"]["message"]
    assert condition(job["status"], "Failed")["reason"] == "DeadlineExceeded"  # type: ignore[index]


def test_an_invalid_spec_fails_once_naming_the_field_and_creates_nothing(
    operator: OperatorProcess, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    name = "invalid"
    train = ADMITTED_BUT_INVALID_TRAIN
    apply(cluster, cluster_namespace, example_manifest("tpu-v4-8.yaml", name=name, train=train))
    job = wait_srj(cluster, cluster_namespace, name, phase_is("Failed"), "Failed")
    assert job["status"]["reason"] == "InvalidSpec"
    message = job["status"]["message"]
    assert ADMITTED_BUT_INVALID_FIELD in message and ADMITTED_BUT_INVALID_FIX in message
    done = operator_done_with(cluster, cluster_namespace, name)
    assert done["status"]["phase"] == "Failed" and done["status"]["reason"] == "InvalidSpec"
    assert rayjobs(cluster, cluster_namespace) == []
    # Not retried in a loop: kopf holds no pending retry, and the failure was announced once.
    events = cluster.objects("events", cluster_namespace, field_selector=f"involvedObject.name={name}")
    assert [e.get("count", 1) for e in events if e["reason"] == "InvalidSpec"] == [1]
    assert (
        srj(cluster, cluster_namespace, name)["metadata"]["resourceVersion"]
        == done["metadata"]["resourceVersion"]
    ), "an invalid spec must not be retried in a loop"


def test_deleting_a_speedrunjob_deletes_its_rayjob_and_raycluster_but_keeps_results(
    operator: OperatorProcess, gcs_emulator: GcsEmulator, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    name = "to-delete"
    apply(cluster, cluster_namespace, example_manifest("marin-hello-world-a100.yaml", name=name))
    status = provisioned(cluster, cluster_namespace, name)["status"]
    wait_for(lambda: cluster.objects("rayclusters.ray.io", cluster_namespace), what="the RayCluster")
    results = gcs_emulator.url("runs", name, "speedrun_results.json")
    with fsspec.open(results, "w") as handle:
        handle.write(marin_results_json(1.5))
    cluster.kubectl("delete", "srj", name, "-n", cluster_namespace, "--wait=true", "--timeout=60s")
    wait_for(lambda: not rayjobs(cluster, cluster_namespace), what=f"RayJob {status['rayJobName']} deleted")
    wait_for(lambda: not cluster.objects("rayclusters.ray.io", cluster_namespace), what="RayCluster deleted")
    fs, path = fsspec.core.url_to_fs(results)
    assert fs.exists(path), "results in storage must outlive the SpeedrunJob"


def test_suspend_tears_the_cluster_down_and_resume_brings_it_back(
    operator: OperatorProcess, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    name = "pausable"
    apply(cluster, cluster_namespace, example_manifest("tpu-v4-8.yaml", name=name))
    status = provisioned(cluster, cluster_namespace, name)["status"]
    patch = ["patch", "srj", name, "-n", cluster_namespace, "--type=merge", "-p"]
    cluster.kubectl(*patch, json.dumps({"spec": {"suspend": True}}))
    wait_for(
        lambda: cluster.get("rayjobs.ray.io", status["rayJobName"], cluster_namespace)["spec"]["suspend"],  # type: ignore[index]
        what="RayJob suspended",
    )
    wait_srj(cluster, cluster_namespace, name, phase_is("Suspended"), "Suspended")
    wait_for(
        lambda: not cluster.objects("rayclusters.ray.io", cluster_namespace), what="RayCluster torn down"
    )
    cluster.kubectl(*patch, json.dumps({"spec": {"suspend": False}}))
    wait_srj(cluster, cluster_namespace, name, phase_is("Provisioning", "Running"), "resumed")
    wait_for(lambda: cluster.objects("rayclusters.ray.io", cluster_namespace), what="a new RayCluster")


def test_a_spec_edit_after_start_is_refused_by_the_api_server(
    operator: OperatorProcess, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    name = "no-edits"
    apply(cluster, cluster_namespace, example_manifest("tpu-v4-8.yaml", name=name))
    provisioned(cluster, cluster_namespace, name)
    refused = cluster.kubectl(
        "patch",
        "srj",
        name,
        "-n",
        cluster_namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"train": {"steps": 1}}}),
        check=False,
    )
    assert refused.returncode != 0 and "spec cannot change once the run has started" in refused.stderr
    rayjob = rayjobs(cluster, cluster_namespace)[0]
    assert (
        "--job" in rayjob["spec"]["entrypoint"]
        and srj(cluster, cluster_namespace, name)["spec"]["train"]["steps"] == 3000
    )


def test_an_externally_deleted_rayjob_is_reported_and_not_recreated(
    operator: OperatorProcess, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    name = "orphaned"
    apply(cluster, cluster_namespace, example_manifest("tpu-v4-8.yaml", name=name))
    status = provisioned(cluster, cluster_namespace, name)["status"]
    cluster.kubectl("delete", "rayjobs.ray.io", status["rayJobName"], "-n", cluster_namespace)
    job = wait_srj(cluster, cluster_namespace, name, phase_is("Failed"), "Failed after the RayJob vanished")
    assert job["status"]["reason"] == "RayJobDeleted"
    # Once kopf is done with it (a Failed job has no resync timer) nothing is left that could re-create it.
    done = operator_done_with(cluster, cluster_namespace, name)
    assert done["status"]["reason"] == "RayJobDeleted"
    assert rayjobs(cluster, cluster_namespace) == []


def metric_samples(operator: OperatorProcess) -> dict[str, float]:
    lines = [line for line in operator.metrics().splitlines() if line[:1] != "#"]
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines}


def transitions_to(samples: dict[str, float], phase: str) -> float:
    return sum(
        value
        for key, value in samples.items()
        if key.startswith("speedrun_phase_transitions_total{") and f'to_phase="{phase}"' in key
    )


def test_metrics_show_phases_transitions_and_results(
    operator: OperatorProcess, gcs_emulator: GcsEmulator, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    before = metric_samples(operator)
    name = "metered"
    apply(cluster, cluster_namespace, example_manifest("marin-hello-world-a100.yaml", name=name))
    rayjob = provisioned(cluster, cluster_namespace, name)["status"]["rayJobName"]
    running_cluster_pods(cluster, cluster_namespace, rayjob, workers=1)
    wait_srj(cluster, cluster_namespace, name, lambda s: "rayClusterName" in s, "the RayCluster's name")
    set_rayjob_status(
        cluster, cluster_namespace, rayjob, {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
    )
    wait_srj(cluster, cluster_namespace, name, phase_is("Running"), "Running")
    with fsspec.open(gcs_emulator.url("runs", name, "speedrun_results.json"), "w") as handle:
        handle.write(marin_results_json(1.234))
    set_rayjob_status(
        cluster,
        cluster_namespace,
        rayjob,
        {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "endTime": "2026-11-25T12:00:00Z"},
    )
    wait_srj(cluster, cluster_namespace, name, lambda s: "results" in s, "Succeeded with results")

    def bpb_of_this_job() -> list[float]:
        return [
            value
            for key, value in metric_samples(operator).items()
            if key.startswith("speedrun_result_eval_bpb{")
            and f'job="{name}"' in key
            and f'namespace="{cluster_namespace}"' in key
        ]

    assert wait_for(lambda: bpb_of_this_job() or None, what=f"{name}'s bpb on /metrics") == [1.234]
    text = operator.metrics()
    expected = (
        "speedrun_jobs{phase=",
        "speedrun_phase_transitions_total{",
        "speedrun_reconcile_duration_seconds_bucket{",
        "speedrun_result_eval_bpb{",
        "speedrun_kubernetes_api_errors_total",
        "speedrun_time_to_running_seconds",
    )
    for metric in expected:
        assert metric in text, f"{metric} missing from /metrics"
    samples = metric_samples(operator)
    assert {
        f'speedrun_jobs{{phase="{phase}"}}' for phase in ("Pending", "Provisioning", "Running", "Failed")
    } <= set(samples)
    # This job's own run counts: one more transition to Succeeded, one more time to Running.
    assert transitions_to(samples, "Succeeded") >= transitions_to(before, "Succeeded") + 1
    count = "speedrun_time_to_running_seconds_count"
    assert samples[count] >= before.get(count, 0.0) + 1
