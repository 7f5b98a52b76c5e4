"""SpeedrunJobs under a real Kueue 0.17 on the kwok pools: quota, admission order and preemption by priority.

Two team namespaces, each with a LocalQueue, share one ClusterQueue whose ResourceFlavors are the pools'
accelerators (and the CPU pool, where Ray heads go), with a quota of exactly one A100 node (8 GPUs). Kueue
admits a run by unsuspending its RayJob and preempts one by suspending it again; KubeRay starts and tears
down the Ray clusters on kwok as it would anywhere. No Ray dashboard answers on kwok's fake pods, so a Ray
job "runs" and "succeeds" when the test reports that on the RayJob's status as KubeRay would, as the other
cluster tests do (fixtures.speedrunjobs.set_rayjob_status).

What kwok cannot show: the preempted run's resumed training. Here its status says it was preempted, it waits
Queued, and it is admitted and Running again on a new Ray cluster with its attempts unchanged. That the
trainer then resumes from its latest checkpoint and counts each step once is what a new attempt on a new Ray
cluster does, proven with real training by tests/e2e/test_trainer_resume.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fsspec
import pytest

from fixtures.operator import OperatorProcess
from fixtures.speedrunjobs import (
    apply,
    condition,
    example_manifest,
    marin_results_json,
    set_rayjob_status,
    srj,
    wait_srj,
)
from fixtures.storage import GcsEmulator
from harness.cluster import wait_for
from harness.pools import load_pools
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.cluster

KUEUE = "kueue.x-k8s.io/v1beta2"
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
POOL_LABEL = "cloud.google.com/gke-nodepool"
RUNNING = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
SUCCEEDED = {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "endTime": "2026-12-02T12:00:00Z"}


@dataclass(frozen=True)
class Queues:
    """The shared ClusterQueue, one LocalQueue per team namespace, and two PriorityClasses."""

    cluster_queue: str
    teams: tuple[str, str]
    local_queue: str
    flavors: dict[str, str]
    """Pool name -> its ResourceFlavor."""
    low: str
    high: str


def flavor_objects(suffix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """A ResourceFlavor per GPU pool (its accelerator label and taints) and one for the CPU pool, with each
    flavor's quota for the ClusterQueue: one node's worth, GPUs only where the pool has them."""
    flavors: list[dict[str, Any]] = []
    quotas: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for pool in load_pools():
        accelerator = pool.labels.get(ACCELERATOR_LABEL)
        if pool.name != "cpu" and accelerator is None:
            continue  # TPU pools: not needed here
        name = f"{pool.name}-{suffix}"
        names[pool.name] = name
        labels = {ACCELERATOR_LABEL: accelerator} if accelerator else {POOL_LABEL: pool.name}
        flavors.append(
            {
                "apiVersion": KUEUE,
                "kind": "ResourceFlavor",
                "metadata": {"name": name},
                "spec": {"nodeLabels": labels, "nodeTaints": [t.as_dict() for t in pool.taints]},
            }
        )
        gpus = pool.capacity.get("nvidia.com/gpu", "0")
        quota = {"cpu": pool.capacity["cpu"], "memory": pool.capacity["memory"], "nvidia.com/gpu": gpus}
        resources = [{"name": key, "nominalQuota": value} for key, value in quota.items()]
        quotas.append({"name": name, "resources": resources})
    # Tainted (accelerator) flavors first: a pod that does not tolerate them falls through to the CPU pool.
    quotas.sort(key=lambda q: q["name"].startswith("cpu-"))
    return flavors, quotas, names


@pytest.fixture
def queues(kueue: ClusterFixture, cluster_namespace: str) -> Iterator[Queues]:
    suffix = uuid.uuid4().hex[:6]
    team_b = f"{cluster_namespace}-b"
    kueue.kubectl("create", "namespace", team_b)
    flavors, quotas, names = flavor_objects(suffix)
    cluster_queue = f"gpus-{suffix}"
    low, high = f"speedrun-low-{suffix}", f"speedrun-high-{suffix}"
    objects: list[dict[str, Any]] = [
        *flavors,
        {
            "apiVersion": KUEUE,
            "kind": "ClusterQueue",
            "metadata": {"name": cluster_queue},
            "spec": {
                "namespaceSelector": {},
                "preemption": {"withinClusterQueue": "LowerPriority"},
                "resourceGroups": [
                    {"coveredResources": ["cpu", "memory", "nvidia.com/gpu"], "flavors": quotas}
                ],
            },
        },
        *(
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": name},
                "value": value,
                "description": "a test's run priority",
            }
            for name, value in ((low, 100), (high, 1000))
        ),
    ]
    for obj in objects:
        kueue.create(obj)
    for namespace in (cluster_namespace, team_b):
        kueue.create(
            {
                "apiVersion": KUEUE,
                "kind": "LocalQueue",
                "metadata": {"name": "team"},
                "spec": {"clusterQueue": cluster_queue},
            },
            namespace,
        )
    wait_for(
        lambda: (
            (kueue.get("clusterqueues.kueue.x-k8s.io", cluster_queue) or {})
            .get("status", {})
            .get("conditions", [{}])[0]
            .get("status")
            == "True"
        ),
        what=f"ClusterQueue {cluster_queue} active",
        timeout=60,
    )
    yield Queues(cluster_queue, (cluster_namespace, team_b), "team", names, low, high)
    kueue.kubectl("delete", "namespace", team_b, "--wait=false", check=False)
    for obj in reversed(objects):
        kueue.kubectl("delete", obj["kind"], obj["metadata"]["name"], "--wait=false", check=False)


def eight_a100s(name: str, queues: Queues, priority: str) -> dict[str, Any]:
    """A run that needs a whole A100 node: the ClusterQueue's quota fits one at a time."""
    manifest = example_manifest(
        "marin-hello-world-a100.yaml",
        name=name,
        queueName=queues.local_queue,
        priorityClassName=priority,
        ttlSecondsAfterFinished=0,
    )
    manifest["spec"]["resources"] = {"gpu": {"type": "A100", "count": 8}}
    return manifest


def reason_is(*reasons: str) -> Any:
    return lambda status: status.get("reason") in reasons


def running(cluster: ClusterFixture, namespace: str, name: str) -> dict[str, Any]:
    """Admitted and its cluster up on kwok: the Ray job reported running, as KubeRay would; then Running."""
    job = wait_srj(
        cluster,
        namespace,
        name,
        lambda s: "admission" in s and "rayClusterName" in s,
        "admitted, with a Ray cluster",
    )
    rayjob = job["status"]["rayJobName"]

    def cluster_up() -> bool:
        # The RayJob's own cluster name: KubeRay names a new cluster each time Kueue admits the run.
        ray = (cluster.get("rayjobs.ray.io", rayjob, namespace) or {}).get("status") or {}
        name = ray.get("rayClusterName")
        pods = cluster.objects("pods", namespace, selector=f"ray.io/cluster={name}") if name else []
        return ray.get("jobDeploymentStatus") in {"Running", "Initializing"} and any(
            p["status"].get("phase") == "Running" for p in pods
        )

    wait_for(cluster_up, what=f"{namespace}/{rayjob}'s Ray cluster pods running", timeout=90)
    set_rayjob_status(cluster, namespace, rayjob, RUNNING)
    return wait_srj(cluster, namespace, name, lambda s: s.get("phase") == "Running", "Running")


def succeed(cluster: ClusterFixture, gcs: GcsEmulator, namespace: str, name: str) -> None:
    with fsspec.open(gcs.url("runs", name, "speedrun_results.json"), "w") as handle:
        handle.write(marin_results_json(1.1))
    set_rayjob_status(cluster, namespace, srj(cluster, namespace, name)["status"]["rayJobName"], SUCCEEDED)
    wait_srj(cluster, namespace, name, lambda s: "results" in s, "Succeeded with results")


def workers_flavor(status: dict[str, Any]) -> str:
    flavors: dict[str, str] = status["admission"]["flavors"]
    return next(flavor for podset, flavor in flavors.items() if podset != "head")


def test_a_second_run_waits_queued_for_the_quota_and_a_higher_priority_one_preempts_a_running_run(
    operator: OperatorProcess, gcs_emulator: GcsEmulator, kueue: ClusterFixture, queues: Queues
) -> None:
    team_a, team_b = queues.teams
    a100 = queues.flavors["a100"]

    # The first run is admitted on the A100 flavor (its head on the CPU pool's) and runs.
    apply(kueue, team_a, eight_a100s("first", queues, queues.low))
    first = running(kueue, team_a, "first")["status"]
    assert first["admission"]["clusterQueue"] == queues.cluster_queue
    assert workers_flavor(first) == a100 and first["admission"]["flavors"]["head"] == queues.flavors["cpu"]
    assert first["admission"]["admittedAt"] and condition(first, "Admitted")["status"] == "True"  # type: ignore[index]

    # The second, from the other team, waits: Queued, with Kueue's own words for why.
    apply(kueue, team_b, eight_a100s("second", queues, queues.low))
    second = wait_srj(
        kueue, team_b, "second", lambda s: "quota" in (s.get("message") or ""), "Queued with Kueue's message"
    )["status"]
    assert (second["phase"], second["reason"]) == ("Queued", "WaitingForAdmission")
    assert "insufficient unused quota" in second["message"] and a100 in second["message"]
    admitted = condition(second, "Admitted")
    assert admitted is not None and admitted["status"] == "False" and "quota" in admitted["message"]
    assert kueue.get("rayjobs.ray.io", second["rayJobName"], team_b)["spec"]["suspend"] is True  # type: ignore[index]

    # The first ends; its quota goes to the second, which then runs.
    succeed(kueue, gcs_emulator, team_a, "first")
    second = running(kueue, team_b, "second")["status"]
    assert workers_flavor(second) == a100 and second["attempts"] == 1

    # A higher-priority run preempts it: Kueue suspends its RayJob, and its status says so.
    apply(kueue, team_a, eight_a100s("urgent", queues, queues.high))
    preempted = wait_srj(kueue, team_b, "second", reason_is("Preempted"), "Preempted", timeout=60)["status"]
    assert preempted["phase"] == "Queued" and preempted["preemptions"] == 1
    assert "preempted by Kueue" in preempted["message"] and "admission" not in preempted
    assert condition(preempted, "Running")["reason"] == "Preempted"  # type: ignore[index]
    running(kueue, team_a, "urgent")

    # The urgent run ends; the preempted one is admitted again on a new Ray cluster and runs, one attempt.
    succeed(kueue, gcs_emulator, team_a, "urgent")
    again = running(kueue, team_b, "second")["status"]
    assert again["preemptions"] == 1 and again["attempts"] == 1
    assert again["admission"]["admittedAt"] >= second["admission"]["admittedAt"]
    assert again["rayClusterName"] != second["rayClusterName"]
    reasons = [
        e["reason"] for e in kueue.objects("events", team_b, field_selector="involvedObject.name=second")
    ]
    assert "Preempted" in reasons and "WaitingForAdmission" in reasons


def test_suspending_a_queued_run_deactivates_its_workload_and_resuming_it_lets_kueue_admit_it(
    operator: OperatorProcess, kueue: ClusterFixture, queues: Queues
) -> None:
    team_a, _ = queues.teams
    apply(kueue, team_a, eight_a100s("paused", queues, queues.low))
    job = running(kueue, team_a, "paused")
    rayjob = job["status"]["rayJobName"]

    kueue.kubectl("patch", "srj", "paused", "-n", team_a, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    wait_srj(kueue, team_a, "paused", lambda s: s.get("phase") == "Suspended", "Suspended")
    workload = job["status"]["admission"]["workload"]
    found = kueue.get("workloads.kueue.x-k8s.io", workload, team_a)
    assert found is not None and found["spec"]["active"] is False
    wait_for(
        lambda: kueue.get("rayjobs.ray.io", rayjob, team_a)["spec"]["suspend"] is True,  # type: ignore[index]
        what="Kueue suspending the RayJob",
        timeout=30,
    )
    # Suspended it stays: Kueue does not admit (and unsuspend) a deactivated run behind the user's back.
    assert srj(kueue, team_a, "paused")["status"]["phase"] == "Suspended"

    kueue.kubectl("patch", "srj", "paused", "-n", team_a, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    again = running(kueue, team_a, "paused")["status"]
    assert again["attempts"] == 1 and "preemptions" not in again
