"""The controller-manager's garbage collector and Job controller work on the local cluster."""

from __future__ import annotations

from typing import Any

import pytest

from harness.cluster import wait_for
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.cluster


def _owner_refs(owner: dict[str, Any]) -> list[dict[str, Any]]:
    meta = owner["metadata"]
    return [{"apiVersion": "v1", "kind": "ConfigMap", "name": meta["name"], "uid": meta["uid"]}]


def _make_owner_with_dependents(cluster: ClusterFixture, ns: str, prefix: str) -> None:
    owner = cluster.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{prefix}-owner"}}, ns
    )
    refs = _owner_refs(owner)
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{prefix}-cm", "ownerReferences": refs},
        },
        ns,
    )
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{prefix}-pod", "ownerReferences": refs},
            "spec": {"containers": [{"name": "main", "image": "python:3.11"}]},
        },
        ns,
    )


def test_deleting_an_owner_makes_the_garbage_collector_delete_its_dependents(
    cluster: ClusterFixture, cluster_namespace: str
) -> None:
    ns = cluster_namespace
    _make_owner_with_dependents(cluster, ns, "bg")

    cluster.kubectl("delete", "configmap", "bg-owner", "-n", ns, "--cascade=background")

    wait_for(
        lambda: cluster.get("configmap", "bg-cm", ns) is None, what="the dependent ConfigMap to be collected"
    )
    wait_for(lambda: cluster.get("pod", "bg-pod", ns) is None, what="the dependent Pod to be collected")


def test_orphan_deletion_keeps_the_dependents_and_drops_their_owner_reference(
    cluster: ClusterFixture, cluster_namespace: str
) -> None:
    ns = cluster_namespace
    _make_owner_with_dependents(cluster, ns, "orphan")

    cluster.kubectl("delete", "configmap", "orphan-owner", "-n", ns, "--cascade=orphan")

    def orphaned() -> bool:
        dependent = cluster.get("configmap", "orphan-cm", ns)
        return dependent is not None and "ownerReferences" not in dependent["metadata"]

    wait_for(orphaned, what="the garbage collector to orphan the dependent")
    assert cluster.get("configmap", "orphan-owner", ns) is None
    assert cluster.get("pod", "orphan-pod", ns) is not None


def test_a_job_runs_to_completion_on_a_kwok_node(cluster: ClusterFixture, cluster_namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "python:3.11"}]}
            },
        },
    }
    cluster.create(job, cluster_namespace)

    def complete() -> dict[str, Any] | None:
        status: dict[str, Any] = (cluster.get("job", "once", cluster_namespace) or {}).get("status", {})
        done = any(c["type"] == "Complete" and c["status"] == "True" for c in status.get("conditions", []))
        return status if done else None

    status = wait_for(complete, what="Job once to complete", timeout=90)
    assert status["succeeded"] == 1
