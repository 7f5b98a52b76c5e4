"""The real scheduler places pods on the GKE-shaped kwok pools by their labels, taints and resources."""

from __future__ import annotations

from typing import Any

import pytest

from harness import pools
from harness.cluster import wait_for
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.cluster

TPU_TOLERATION = {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"}


def tpu_pod(name: str, accelerator: str, topology: str, chips: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {
                "cloud.google.com/gke-tpu-accelerator": accelerator,
                "cloud.google.com/gke-tpu-topology": topology,
            },
            "tolerations": [TPU_TOLERATION],
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.11",
                    "resources": {
                        "requests": {"google.com/tpu": str(chips)},
                        "limits": {"google.com/tpu": str(chips)},
                    },
                }
            ],
        },
    }


def unschedulable_message(total: int, reasons: dict[str, int]) -> str:
    """The scheduler's FailedScheduling message: reasons as "N node(s) ...", sorted as strings."""
    parts = sorted(f"{count} node(s) {reason}" for reason, count in reasons.items() if count)
    return (
        f"0/{total} nodes are available: {', '.join(parts)}. "
        f"preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
    )


def _failed_scheduling(cluster: ClusterFixture, namespace: str, pod: str) -> dict[str, Any] | None:
    events = cluster.objects(
        "event", namespace, field_selector=f"involvedObject.name={pod},reason=FailedScheduling"
    )
    return events[0] if events else None


def test_a_pod_for_a_tpu_topology_no_pool_has_stays_pending_with_a_failedscheduling_event(
    cluster: ClusterFixture, cluster_namespace: str
) -> None:
    # v4 4x4x4 would be a 16-host slice; the cluster's v4 pools are 2x2x1 and 2x2x2.
    cluster.create(tpu_pod("v4-4x4x4", "tpu-v4-podslice", "4x4x4", 4), cluster_namespace)

    event = wait_for(
        lambda: _failed_scheduling(cluster, cluster_namespace, "v4-4x4x4"), what="a FailedScheduling event"
    )
    # The TPU nodes and the CPU pool fail on the selector; the GPU nodes already fail on their taint, which
    # this pod (tolerating only google.com/tpu) does not tolerate.
    nodes = cluster.objects("node")
    tainted = [n for n in nodes if any(t["key"] != "google.com/tpu" for t in n["spec"].get("taints", []))]
    assert event["type"] == "Warning"
    assert event["message"] == unschedulable_message(
        len(nodes),
        {
            "didn't match Pod's node affinity/selector": len(nodes) - len(tainted),
            "had untolerated taint(s)": len(tainted),
        },
    )

    pod = cluster.get("pod", "v4-4x4x4", cluster_namespace)
    assert pod is not None
    assert pod["status"]["phase"] == "Pending"
    assert "nodeName" not in pod["spec"]
    (scheduled,) = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")


@pytest.mark.parametrize(
    ("pool", "accelerator", "topology", "chips"),
    [
        ("tpu-v4-2x2x1", "tpu-v4-podslice", "2x2x1", 4),
        ("tpu-v4-2x2x2", "tpu-v4-podslice", "2x2x2", 4),
        ("tpu-v5e-2x4", "tpu-v5-lite-podslice", "2x4", 8),
        ("tpu-v6e-2x4", "tpu-v6e-slice", "2x4", 8),
    ],
)
def test_a_tpu_pod_runs_on_its_slice_pool(
    cluster: ClusterFixture, cluster_namespace: str, pool: str, accelerator: str, topology: str, chips: int
) -> None:
    cluster.create(tpu_pod("tpu", accelerator, topology, chips), cluster_namespace)

    def running() -> dict[str, Any] | None:
        pod = cluster.get("pod", "tpu", cluster_namespace)
        return pod if pod and pod["status"].get("phase") == "Running" else None

    pod = wait_for(running, what=f"a pod Running on {pool}")
    node = cluster.get("node", pod["spec"]["nodeName"])
    assert node is not None
    assert node["metadata"]["labels"][pools.NODEPOOL_LABEL] == pool
    # kwok hands out fake pod IPs from a range nothing else on the machine uses.
    assert pod["status"]["podIP"].startswith("10.250.")


def test_a_gpu_pod_without_the_gpu_toleration_is_kept_off_gpu_nodes(
    cluster: ClusterFixture, cluster_namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "untolerated"},
        "spec": {
            "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
            "containers": [
                {"name": "main", "image": "python:3.11", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
            ],
        },
    }
    cluster.create(pod, cluster_namespace)

    event = wait_for(
        lambda: _failed_scheduling(cluster, cluster_namespace, "untolerated"), what="a FailedScheduling event"
    )
    # Every tainted node (GPU and TPU) refuses it on the taint; the rest lack the H100 label.
    nodes = cluster.objects("node")
    tainted = [n for n in nodes if n["spec"].get("taints")]
    assert event["message"] == unschedulable_message(
        len(nodes),
        {
            "had untolerated taint(s)": len(tainted),
            "didn't match Pod's node affinity/selector": len(nodes) - len(tainted),
        },
    )
    pod_now = cluster.get("pod", "untolerated", cluster_namespace)
    assert pod_now is not None and "nodeName" not in pod_now["spec"]
