"""GKE-shaped node pools (``pools.yaml``) as kwok Node objects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POOLS_FILE = Path(__file__).with_name("pools.yaml")
KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
NODEPOOL_LABEL = "cloud.google.com/gke-nodepool"
GPU_RESOURCE = "nvidia.com/gpu"
TPU_RESOURCE = "google.com/tpu"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class PoolError(ValueError):
    pass


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "effect": self.effect}


@dataclass(frozen=True)
class Pool:
    name: str
    machine_type: str
    nodes: int
    labels: dict[str, str] = field(default_factory=dict)
    capacity: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()

    def node_names(self) -> list[str]:
        return [f"{self.name}-{i}" for i in range(self.nodes)]


def _str_map(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PoolError(f"{where} must be a mapping, not {type(value).__name__}")
    return {str(k): str(v) for k, v in value.items()}


def parse_pools(data: object) -> list[Pool]:
    """Validate the pools document and return its pools, each node's capacity already completed."""
    if not isinstance(data, dict) or not isinstance(data.get("pools"), list):
        raise PoolError("the pools file needs a `pools:` list")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise PoolError("`defaults` must be a mapping")
    default_capacity = _str_map(defaults.get("capacity"), "defaults.capacity")
    pools: list[Pool] = []
    for index, entry in enumerate(data["pools"]):
        if not isinstance(entry, dict):
            raise PoolError(f"pool #{index} must be a mapping")
        name = str(entry.get("name", ""))
        if not _NAME.match(name) or len(name) > 50:
            raise PoolError(f"pool #{index}: {name!r} is not a valid pool name (DNS label, at most 50 chars)")
        nodes = entry.get("nodes")
        if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
            raise PoolError(f"pool {name}: `nodes` must be a positive integer")
        machine_type = entry.get("machineType")
        if not isinstance(machine_type, str) or not machine_type:
            raise PoolError(f"pool {name}: `machineType` is required")
        taints: list[Taint] = []
        for raw in entry.get("taints") or []:
            if not isinstance(raw, dict) or raw.get("effect") not in TAINT_EFFECTS or not raw.get("key"):
                raise PoolError(f"pool {name}: bad taint {raw!r}")
            taints.append(Taint(str(raw["key"]), str(raw.get("value", "")), str(raw["effect"])))
        pools.append(
            Pool(
                name=name,
                machine_type=machine_type,
                nodes=nodes,
                labels=_str_map(entry.get("labels"), f"pool {name}: labels"),
                capacity={**default_capacity, **_str_map(entry.get("capacity"), f"pool {name}: capacity")},
                taints=tuple(taints),
            )
        )
    names = [p.name for p in pools]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise PoolError(f"duplicate pool names: {sorted(duplicates)}")
    return pools


def load_pools(path: Path = POOLS_FILE) -> list[Pool]:
    import yaml  # here, so that `python -m harness build` needs only the standard library

    return parse_pools(yaml.safe_load(path.read_text()))


def node_objects(pool: Pool) -> list[dict[str, Any]]:
    """The kwok Node objects of one pool (kwok only manages nodes with its annotation)."""
    nodes: list[dict[str, Any]] = []
    for name in pool.node_names():
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": pool.machine_type,
            NODEPOOL_LABEL: pool.name,
            "type": "kwok",
            **pool.labels,
        }
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": labels,
                    "annotations": {
                        KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1],
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                },
                "spec": {"taints": [t.as_dict() for t in pool.taints]},
                "status": {
                    "capacity": dict(pool.capacity),
                    "allocatable": dict(pool.capacity),
                },
            }
        )
    return nodes


def all_node_objects(pools: list[Pool]) -> list[dict[str, Any]]:
    return [node for pool in pools for node in node_objects(pool)]


def node_list(pools: list[Pool]) -> dict[str, Any]:
    """All nodes as one v1 List, ready for `kubectl create -f`."""
    return {"apiVersion": "v1", "kind": "List", "items": all_node_objects(pools)}
