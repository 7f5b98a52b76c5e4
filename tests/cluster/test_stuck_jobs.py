"""A job whose Ray cluster cannot come up says why, on the SpeedrunJob, within seconds; one that cannot get
running by its provisioning deadline fails and gives its cluster back; in a namespace enforcing Pod
Security's restricted profile every pod a job causes is admitted.

Real API server (its PodSecurity and ResourceQuota admission), real scheduler, real KubeRay, kwok nodes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from fixtures.operator import OperatorProcess
from fixtures.speedrunjobs import apply, condition, example_manifest, rayjobs, wait_srj
from harness.cluster import wait_for
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.cluster

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def warning_events(cluster: ClusterFixture, namespace: str, name: str) -> list[dict[str, Any]]:
    events = cluster.objects("events", namespace, field_selector=f"involvedObject.name={name}")
    return [e for e in events if e.get("type") == "Warning"]


def test_pods_refused_by_admission_show_the_refusal_on_the_job_within_30_s(
    operator: OperatorProcess, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "no-pods"},
            "spec": {"hard": {"pods": "0"}},
        },
        namespace=cluster_namespace,
    )
    name = "refused"
    apply(cluster, cluster_namespace, example_manifest("marin-hello-world-a100.yaml", name=name))
    started = time.monotonic()
    job = wait_srj(
        cluster,
        cluster_namespace,
        name,
        lambda s: s.get("reason") == "PodsRefused",
        "PodsRefused",
        timeout=30,
    )
    say = job["status"]["message"]
    assert "exceeded quota" in say and "FailedCreate" in say, say
    assert condition(job["status"], "ClusterReady")["reason"] == "PodsRefused"  # type: ignore[index]
    assert time.monotonic() - started < 30
    assert any(e["reason"] == "PodsRefused" for e in warning_events(cluster, cluster_namespace, name))
    described = cluster.kubectl("describe", "srj", name, "-n", cluster_namespace).stdout
    assert "exceeded quota" in described


def test_a_job_no_node_fits_is_unschedulable_then_fails_at_its_deadline_and_gives_its_cluster_back(
    operator: OperatorProcess, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    name = "no-capacity"
    manifest = example_manifest(
        "marin-hello-world-a100.yaml",
        name=name,
        nodeSelector={"cloud.google.com/gke-nodepool": "a-pool-nobody-made"},
        provisioningDeadlineSeconds=25,
    )
    apply(cluster, cluster_namespace, manifest)
    job = wait_srj(
        cluster,
        cluster_namespace,
        name,
        lambda s: s.get("reason") == "Unschedulable",
        "Unschedulable",
        timeout=30,
    )
    assert "didn't match Pod's node affinity/selector" in job["status"]["message"]
    job = wait_srj(
        cluster,
        cluster_namespace,
        name,
        lambda s: s.get("phase") == "Failed",
        "Failed at the deadline",
        timeout=60,
    )
    status = job["status"]
    assert status["reason"] == "ProvisioningDeadlineExceeded"
    assert "Unschedulable" in status["message"] and "deadline 25 s" in status["message"]
    wait_for(lambda: not rayjobs(cluster, cluster_namespace), what="the RayJob to be deleted", timeout=30)


@pytest.fixture
def restricted_namespace(cluster: ClusterFixture) -> Iterator[str]:
    """A namespace made enforcing restricted from its first moment, as a platform team makes tenants'."""
    name = f"r-{uuid.uuid4().hex[:10]}"
    cluster.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED}}
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_in_a_namespace_enforcing_restricted_every_pod_of_a_job_is_admitted(
    operator: OperatorProcess, cluster: ClusterFixture, restricted_namespace: str
) -> None:
    cluster_namespace = restricted_namespace
    name = "restricted"
    apply(cluster, cluster_namespace, example_manifest("marin-hello-world-a100.yaml", name=name))
    job = wait_srj(cluster, cluster_namespace, name, lambda s: "rayJobName" in s, "its RayJob")
    rayjob = cluster.get("rayjob", job["status"]["rayJobName"], cluster_namespace)
    assert rayjob is not None and rayjob["spec"]["submissionMode"] == "K8sJobMode"

    def head_and_worker() -> list[dict[str, Any]] | None:
        pods = cluster.objects("pods", cluster_namespace)
        kinds = {p["metadata"].get("labels", {}).get("ray.io/node-type") for p in pods}
        return pods if {"head", "worker"} <= kinds else None

    pods = wait_for(head_and_worker, what="head and worker pods admitted", timeout=60)
    for pod in pods:
        for container in [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]:
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}, container["name"]
    refusals = [e for e in warning_events(cluster, cluster_namespace, job["status"]["rayJobName"])]
    assert not [e for e in refusals if "PodSecurity" in e.get("message", "")]
    assert job["status"].get("reason") != "PodsRefused"
