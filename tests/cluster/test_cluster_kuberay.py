"""KubeRay runs for real on the local cluster: its pods land on the GKE-shaped kwok pools."""

from __future__ import annotations

from typing import Any

import pytest

from harness.cluster import wait_for
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.cluster

A100 = {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def a100_raycluster(name: str, workers: int) -> dict[str, Any]:
    container = {"image": "rayproject/ray:2.49.2", "resources": {}}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name},
        "spec": {
            "rayVersion": "2.49.2",
            "headGroupSpec": {
                "rayStartParams": {},
                "template": {
                    "spec": {
                        "containers": [
                            {
                                **container,
                                "name": "ray-head",
                                "resources": {"requests": {"cpu": "2", "memory": "8Gi"}},
                            }
                        ]
                    }
                },
            },
            "workerGroupSpecs": [
                {
                    "groupName": "a100",
                    "replicas": workers,
                    "minReplicas": workers,
                    "maxReplicas": workers,
                    "rayStartParams": {},
                    "template": {
                        "spec": {
                            "nodeSelector": A100,
                            "tolerations": [GPU_TOLERATION],
                            "containers": [
                                {
                                    **container,
                                    "name": "ray-worker",
                                    "resources": {
                                        "requests": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "8"},
                                        "limits": {"nvidia.com/gpu": "8"},
                                    },
                                }
                            ],
                        }
                    },
                }
            ],
        },
    }


def _raycluster_state(cluster: ClusterFixture, namespace: str, name: str) -> str | None:
    obj = cluster.get("raycluster", name, namespace) or {}
    state: str | None = obj.get("status", {}).get("state")
    return state


def test_a_raycluster_of_a100_workers_becomes_ready_on_a100_nodes(
    cluster: ClusterFixture, cluster_namespace: str
) -> None:
    cluster.create(a100_raycluster("a100", workers=2), cluster_namespace)

    wait_for(
        lambda: _raycluster_state(cluster, cluster_namespace, "a100") == "ready",
        what="RayCluster a100 to reach state ready",
        timeout=120,
    )

    # The real KubeRay operator made the pods and the real scheduler bound them to A100 nodes.
    workers = cluster.objects(
        "pod", cluster_namespace, selector="ray.io/cluster=a100,ray.io/node-type=worker"
    )
    assert len(workers) == 2
    assert len({pod["spec"]["nodeName"] for pod in workers}) == 2, "each 8-GPU worker needs a whole A100 node"
    for pod in workers:
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
        node = cluster.get("node", pod["spec"]["nodeName"])
        assert node is not None
        assert node["metadata"]["labels"]["cloud.google.com/gke-accelerator"] == "nvidia-tesla-a100"
        assert node["metadata"]["labels"]["cloud.google.com/gke-nodepool"] == "a100"

    (head,) = cluster.objects("pod", cluster_namespace, selector="ray.io/cluster=a100,ray.io/node-type=head")
    assert head["status"]["phase"] == "Running"
    # Without a GPU toleration the head can only go to the untainted CPU pool.
    head_node = cluster.get("node", head["spec"]["nodeName"])
    assert head_node is not None
    assert head_node["metadata"]["labels"]["cloud.google.com/gke-nodepool"] == "cpu"


def test_a_third_8_gpu_worker_waits_for_a_free_a100_node(
    cluster: ClusterFixture, cluster_namespace: str
) -> None:
    # Two A100 nodes of 8 GPUs each: a worker group of 3 leaves one worker Pending and the cluster not ready.
    cluster.create(a100_raycluster("a100x3", workers=3), cluster_namespace)

    def two_running_one_pending() -> bool:
        pods = cluster.objects(
            "pod", cluster_namespace, selector="ray.io/cluster=a100x3,ray.io/node-type=worker"
        )
        phases = sorted(p["status"].get("phase", "") for p in pods)
        unbound = [p for p in pods if not p["spec"].get("nodeName")]
        return phases == ["Pending", "Running", "Running"] and len(unbound) == 1

    wait_for(two_running_one_pending, what="two running A100 workers and one pending", timeout=120)
    assert _raycluster_state(cluster, cluster_namespace, "a100x3") != "ready"
