"""Two operator replicas with kopf peering: exactly one acts; when it dies, the other takes over."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.operator import OperatorProcess
from fixtures.speedrunjobs import apply, example_manifest, rayjobs, wait_srj
from harness import processes
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.cluster

PEERING = Path(__file__).resolve().parents[2] / "crds" / "kopf-peering.yaml"
PEERING_OBJECT = "apiVersion: kopf.dev/v1\nkind: ClusterKopfPeering\nmetadata:\n  name: speedrun-operator\n"


def replica(template: OperatorProcess, tmp_path: Path, name: str, priority: int) -> OperatorProcess:
    (port,) = processes.free_ports(1)
    env = {**template.env, "SPEEDRUN_METRICS_PORT": str(port), "SPEEDRUN_PEERING_LIFETIME_SECONDS": "10"}
    return dataclasses.replace(
        template, log=tmp_path / f"{name}.log", env=env, metrics_port=port,
        args=("--peering", "speedrun-operator", "--priority", str(priority)), popen=None, pids=[],
    )  # fmt: skip


@pytest.fixture
def replicas(
    operator: OperatorProcess, cluster: ClusterFixture, tmp_path: Path
) -> Iterator[list[OperatorProcess]]:
    """Two peered replicas in place of the standalone test operator (restarted afterwards)."""
    cluster.kubectl("apply", "--server-side", "-f", str(PEERING))
    cluster.kubectl("wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev")
    cluster.kubectl("apply", "-f", "-", input=PEERING_OBJECT)
    operator.stop()
    pair = [replica(operator, tmp_path, "leader", 200), replica(operator, tmp_path, "standby", 100)]
    try:
        for process in pair:
            process.start()
        yield pair
    finally:
        for process in pair:
            process.stop()
        operator.start()


def test_only_the_highest_priority_replica_acts_and_the_other_takes_over(
    replicas: list[OperatorProcess], cluster: ClusterFixture, cluster_namespace: str
) -> None:
    leader, standby = replicas
    apply(cluster, cluster_namespace, example_manifest("tpu-v4-8.yaml", name="first"))
    wait_srj(cluster, cluster_namespace, "first", lambda s: "rayJobName" in s, "a RayJob")
    assert len(rayjobs(cluster, cluster_namespace)) == 1
    assert "first" in leader.log.read_text() and "first" not in standby.log.read_text()

    leader.kill()
    apply(cluster, cluster_namespace, example_manifest("tpu-v4-8.yaml", name="second"))
    wait_srj(
        cluster,
        cluster_namespace,
        "second",
        lambda s: "rayJobName" in s,
        "the standby to take over",
        timeout=90,
    )
    names = sorted(r["metadata"]["name"] for r in rayjobs(cluster, cluster_namespace))
    assert names == ["srj-first", "srj-second"]
    assert "second" in standby.log.read_text()
