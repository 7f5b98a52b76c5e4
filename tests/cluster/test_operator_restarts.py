"""A SIGKILLed operator, restarted, leaves exactly one RayJob per SpeedrunJob and converges the status."""

from __future__ import annotations

import time

import fsspec
import pytest

from fixtures.operator import OperatorProcess
from fixtures.speedrunjobs import (
    apply,
    example_manifest,
    marin_results_json,
    phase_is,
    rayjobs,
    set_rayjob_status,
    srj,
    wait_srj,
)
from fixtures.storage import GcsEmulator
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.cluster


def restart(operator: OperatorProcess) -> None:
    operator.kill()
    operator.start()


@pytest.mark.parametrize("delay", [0.0, 0.2, 0.6, 1.5], ids=lambda d: f"killed-{d}s-after-apply")
def test_killed_while_creating_leaves_exactly_one_rayjob(
    operator: OperatorProcess, cluster: ClusterFixture, cluster_namespace: str, delay: float
) -> None:
    name = "created-under-fire"
    apply(cluster, cluster_namespace, example_manifest("tpu-v4-8.yaml", name=name))
    time.sleep(delay)
    restart(operator)
    job = wait_srj(
        cluster, cluster_namespace, name, lambda s: "rayJobName" in s and "runInfo" in s, "accepted"
    )
    time.sleep(2)  # room for a duplicate to appear, if the operator were to make one
    assert [r["metadata"]["name"] for r in rayjobs(cluster, cluster_namespace)] == [
        job["status"]["rayJobName"]
    ]
    assert srj(cluster, cluster_namespace, name)["status"]["phase"] == "Provisioning"


def test_state_changes_while_the_operator_is_down_are_picked_up_on_restart(
    operator: OperatorProcess, gcs_emulator: GcsEmulator, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    name = "missed-events"
    apply(cluster, cluster_namespace, example_manifest("marin-hello-world-a100.yaml", name=name))
    rayjob = wait_srj(cluster, cluster_namespace, name, lambda s: "rayJobName" in s, "a RayJob")["status"][
        "rayJobName"
    ]

    operator.kill()
    set_rayjob_status(
        cluster, cluster_namespace, rayjob, {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
    )
    operator.start()
    wait_srj(cluster, cluster_namespace, name, phase_is("Running"), "Running after a restart")

    operator.kill()
    with fsspec.open(gcs_emulator.url("runs", name, "speedrun_results.json"), "w") as handle:
        handle.write(marin_results_json(1.111))
    set_rayjob_status(
        cluster, cluster_namespace, rayjob, {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}
    )
    operator.start()
    job = wait_srj(cluster, cluster_namespace, name, lambda s: "results" in s, "Succeeded with results")
    assert job["status"]["phase"] == "Succeeded" and job["status"]["results"]["evalBpb"] == 1.111

    restart(operator)
    time.sleep(2)
    assert len(rayjobs(cluster, cluster_namespace)) <= 1, "a finished run is never started again"
    again = srj(cluster, cluster_namespace, name)["status"]
    assert again["phase"] == "Succeeded" and again["results"] == job["status"]["results"]
