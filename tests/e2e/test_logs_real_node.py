"""A SpeedrunJob whose trainer fails on the real node: once KubeRay has deleted its Ray cluster, its
traceback is still in the output (the GCS emulator) and ``speedrun logs NAMESPACE/NAME`` prints it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.operator import OperatorProcess
from fixtures.real_node_jobs import Timeline, follow, own_hello_world, pods_of
from fixtures.storage import GcsEmulator
from harness.cluster import wait_for
from harness.node import RealNode
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.e2e

SPEEDRUN = str(Path(sys.executable).with_name("speedrun"))
# Levanter's words when a job's cacheUrl holds no cache: it fails before the first step.
FAILURE = "ValueError: Datasets cannot be empty"


def test_a_trainer_failure_is_in_speedrun_logs_after_kuberay_has_deleted_the_cluster(
    cluster: ClusterFixture,
    cluster_namespace: str,
    real_node: RealNode,
    operator: OperatorProcess,
    gcs_emulator: GcsEmulator,
) -> None:
    output = gcs_emulator.url("e2e-logs", cluster_namespace)
    manifest = own_hello_world(cluster, cluster_namespace, real_node, gcs_emulator, "fails", output)
    manifest["spec"]["dataset"] = {
        "cacheUrl": gcs_emulator.url("no-cache-here"),
        "tokenizer": "bundled",
        "validationUrls": {},
    }
    manifest["spec"].update({"backoffLimit": 0, "ttlSecondsAfterFinished": 0})
    cluster.create(manifest, cluster_namespace)

    status = follow(cluster, cluster_namespace, "fails", Timeline())
    assert status["phase"] == "Failed", json.dumps(status, indent=1)
    assert status["logsUrl"] == f"{output}/fails/logs"
    wait_for(
        lambda: (
            not cluster.objects("raycluster", cluster_namespace) and not pods_of(cluster, cluster_namespace)
        ),
        what="KubeRay deleting the failed run's Ray cluster and its pods",
        timeout=300,
    )

    shown = subprocess.run(
        [SPEEDRUN, "logs", f"{cluster_namespace}/fails"],
        capture_output=True,
        text=True,
        env={**os.environ, **gcs_emulator.env, "KUBECONFIG": str(cluster.kubeconfig)},
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    processes = [
        line.split(", ")[1].split(":")[0] for line in shown.stdout.splitlines() if line.startswith("==>")
    ]
    assert processes == ["driver", "host0"], shown.stdout[-4000:]
    assert "Traceback (most recent call last)" in shown.stdout and FAILURE in shown.stdout
