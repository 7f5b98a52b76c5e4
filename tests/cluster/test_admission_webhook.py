"""The optional admission webhook refuses at `kubectl apply` a spec that the CRD schema alone lets through."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.operator import OperatorProcess
from fixtures.speedrunjobs import example_manifest
from harness import processes
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.cluster

WEBHOOK_CONFIGURATION = "validatingwebhookconfiguration/speedrun.marin.community"


@pytest.fixture
def webhook_operator(operator: OperatorProcess, cluster: ClusterFixture, tmp_path: Path) -> Iterator[None]:
    """The test operator, restarted with its webhook on loopback (and restarted plain afterwards)."""
    operator.stop()
    (port,) = processes.free_ports(1)
    env = {**operator.env, "SPEEDRUN_WEBHOOK_HOST": "127.0.0.1"}
    with_webhook = dataclasses.replace(operator, log=tmp_path / "webhook.log", env=env, popen=None, pids=[],
                                       args=("--standalone", "--webhook-port", str(port)))  # fmt: skip
    try:
        with_webhook.start()
        cluster.kubectl("wait", "--for=create", WEBHOOK_CONFIGURATION, "--timeout=60s")
        yield
    finally:
        with_webhook.stop()
        cluster.kubectl("delete", WEBHOOK_CONFIGURATION, "--ignore-not-found")
        operator.start()


def test_apply_time_errors_name_the_field(
    webhook_operator: None, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    bad = example_manifest(
        "tpu-v4-8.yaml", name="rejected", train={"batchSize": 30, "steps": 10, "learningRate": 0.1}
    )
    refused = cluster.kubectl("apply", "-n", cluster_namespace, "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0
    assert (
        "spec.train.batchSize: must be divisible by the number of chips of v4-8 (4 chips); try 32"
        in refused.stderr
    )
    assert cluster.get("speedrunjob", "rejected", cluster_namespace) is None

    good = example_manifest("tpu-v4-8.yaml", name="admitted")
    cluster.kubectl("apply", "-n", cluster_namespace, "-f", "-", input=json.dumps(good))
    assert cluster.get("speedrunjob", "admitted", cluster_namespace) is not None
