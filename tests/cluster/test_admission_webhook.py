"""The admission webhook refuses at `kubectl apply` what the CRD's schema and CEL rules alone let through.

Here the operator runs as a local process that signs its own certificate and registers the webhook on
loopback (kopf manages the configuration); the chart's own configuration, certificate and Service are
exercised in tests/cluster/test_helm_chart.py and, end to end on the real node, in
tests/e2e/test_operator_pod_real_node.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.bad_specs import assert_every_bad_file_refused, refusals
from fixtures.operator import OperatorProcess
from fixtures.speedrunjobs import (
    ADMITTED_BUT_INVALID_FIELD,
    ADMITTED_BUT_INVALID_FIX,
    ADMITTED_BUT_INVALID_TRAIN,
    example_manifest,
)
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
    bad = example_manifest("tpu-v4-8.yaml", name="rejected", train=ADMITTED_BUT_INVALID_TRAIN)
    refused = cluster.kubectl("apply", "-n", cluster_namespace, "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0
    assert f"{ADMITTED_BUT_INVALID_FIELD}: the power LR schedule needs one batch size" in refused.stderr
    assert ADMITTED_BUT_INVALID_FIX in refused.stderr
    assert cluster.get("speedrunjob", "rejected", cluster_namespace) is None

    good = example_manifest("tpu-v4-8.yaml", name="admitted")
    cluster.kubectl("apply", "-n", cluster_namespace, "-f", "-", input=json.dumps(good))
    assert cluster.get("speedrunjob", "admitted", cluster_namespace) is not None


def test_every_bad_file_is_refused_at_apply_naming_its_field(
    webhook_operator: None, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    assert_every_bad_file_refused(cluster, cluster_namespace)


ONLY_THE_WEBHOOK_REFUSES = {"power-schedule-with-a-batch-schedule.yaml"}
"""Bad files whose fault CEL cannot express (yet): the CRD's schema admits them."""


def test_without_the_webhook_the_api_server_refuses_what_the_crds_schema_and_cel_rules_can_say(
    cluster: ClusterFixture, cluster_namespace: str
) -> None:
    wrong = refusals(cluster, cluster_namespace, dry_run=True)
    assert {name for name, why in wrong.items() if why.startswith("admitted")} == ONLY_THE_WEBHOOK_REFUSES
    assert set(wrong) == ONLY_THE_WEBHOOK_REFUSES, wrong
