"""The local cluster's node pools (tests/harness/pools.yaml) are data that turns into GKE-shaped nodes."""

from __future__ import annotations

from typing import Any

import pytest

from harness import pools

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def nodes() -> dict[str, dict[str, Any]]:
    return {n["metadata"]["name"]: n for n in pools.all_node_objects(pools.load_pools())}


def _pool_nodes(nodes: dict[str, dict[str, Any]], pool: str) -> list[dict[str, Any]]:
    return [n for n in nodes.values() if n["metadata"]["labels"][pools.NODEPOOL_LABEL] == pool]


def test_every_node_is_a_kwok_node_with_a_unique_dns_name(nodes: dict[str, dict[str, Any]]) -> None:
    assert len(nodes) == sum(p.nodes for p in pools.load_pools())
    for name, node in nodes.items():
        assert node["apiVersion"] == "v1"
        assert node["kind"] == "Node"
        assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
        assert len(name) <= 63 and name.replace("-", "").isalnum() and name == name.lower()


def test_every_node_has_plenty_of_cpu_memory_and_pods(nodes: dict[str, dict[str, Any]]) -> None:
    for node in nodes.values():
        status = node["status"]
        assert status["capacity"] == status["allocatable"]
        assert int(status["capacity"]["cpu"]) >= 32
        assert status["capacity"]["memory"].endswith("Gi") and int(status["capacity"]["memory"][:-2]) >= 128
        assert int(status["capacity"]["pods"]) >= 100


@pytest.mark.parametrize(
    ("pool", "accelerator"), [("a100", "nvidia-tesla-a100"), ("h100", "nvidia-h100-80gb")]
)
def test_gpu_pools_look_like_gke_gpu_nodes(
    nodes: dict[str, dict[str, Any]], pool: str, accelerator: str
) -> None:
    members = _pool_nodes(nodes, pool)
    assert len(members) >= 2
    for node in members:
        assert node["metadata"]["labels"]["cloud.google.com/gke-accelerator"] == accelerator
        assert node["status"]["capacity"]["nvidia.com/gpu"] == "8"
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
        assert node["spec"]["taints"] == [
            {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
        ]


@pytest.mark.parametrize(
    ("pool", "accelerator", "topology", "chips_per_host", "hosts_per_slice"),
    [
        ("tpu-v4-2x2x1", "tpu-v4-podslice", "2x2x1", 4, 1),
        ("tpu-v4-2x2x2", "tpu-v4-podslice", "2x2x2", 4, 2),
        ("tpu-v5e-2x4", "tpu-v5-lite-podslice", "2x4", 8, 1),
        ("tpu-v6e-2x4", "tpu-v6e-slice", "2x4", 8, 1),
    ],
)
def test_tpu_pools_hold_whole_slices(
    nodes: dict[str, dict[str, Any]],
    pool: str,
    accelerator: str,
    topology: str,
    chips_per_host: int,
    hosts_per_slice: int,
) -> None:
    members = _pool_nodes(nodes, pool)
    chips_in_topology = 1
    for dim in topology.split("x"):
        chips_in_topology *= int(dim)
    # GKE's rule: hosts per slice = chips in the topology / chips per host.
    assert chips_in_topology // chips_per_host == hosts_per_slice
    # Enough nodes for at least two slices, so a slice and another job fit side by side.
    assert len(members) >= 2 * hosts_per_slice
    for node in members:
        labels = node["metadata"]["labels"]
        assert labels["cloud.google.com/gke-tpu-accelerator"] == accelerator
        assert labels["cloud.google.com/gke-tpu-topology"] == topology
        assert node["status"]["capacity"]["google.com/tpu"] == str(chips_per_host)
        assert node["status"]["allocatable"]["google.com/tpu"] == str(chips_per_host)
        assert node["spec"]["taints"] == [
            {"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"}
        ]


def test_the_cpu_pool_is_untainted_and_has_no_accelerators(nodes: dict[str, dict[str, Any]]) -> None:
    members = _pool_nodes(nodes, "cpu")
    assert len(members) >= 2
    for node in members:
        assert node["spec"]["taints"] == []
        assert not {"nvidia.com/gpu", "google.com/tpu"} & set(node["status"]["capacity"])


def test_adding_a_pool_is_one_entry() -> None:
    data = {
        "defaults": {"capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"}},
        "pools": [
            {
                "name": "l4",
                "machineType": "g2-standard-8",
                "nodes": 3,
                "labels": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
                "capacity": {"nvidia.com/gpu": 1},
                "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
            }
        ],
    }
    (pool,) = pools.parse_pools(data)
    made = pools.node_objects(pool)
    assert [n["metadata"]["name"] for n in made] == ["l4-0", "l4-1", "l4-2"]
    assert made[0]["status"]["capacity"] == {
        "cpu": "8",
        "memory": "32Gi",
        "pods": "110",
        "nvidia.com/gpu": "1",
    }
    assert made[0]["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "g2-standard-8"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "Bad_Name", "machineType": "m", "nodes": 1}, "not a valid pool name"),
        ({"name": "ok", "machineType": "m", "nodes": 0}, "positive integer"),
        ({"name": "ok", "nodes": 1}, "machineType"),
        (
            {"name": "ok", "machineType": "m", "nodes": 1, "taints": [{"key": "k", "effect": "Sometimes"}]},
            "bad taint",
        ),
    ],
)
def test_bad_pool_entries_are_refused(entry: dict[str, object], message: str) -> None:
    with pytest.raises(pools.PoolError, match=message):
        pools.parse_pools({"pools": [entry]})


def test_duplicate_pool_names_are_refused() -> None:
    entry = {"name": "cpu", "machineType": "m", "nodes": 1}
    with pytest.raises(pools.PoolError, match="duplicate"):
        pools.parse_pools({"pools": [entry, entry]})


def test_the_node_list_is_one_kubectl_document() -> None:
    doc = pools.node_list(pools.load_pools())
    assert doc["kind"] == "List"
    assert all(item["kind"] == "Node" for item in doc["items"])
