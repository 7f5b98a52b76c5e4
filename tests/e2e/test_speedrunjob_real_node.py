"""A SpeedrunJob trains for real: operator → RayJob → KubeRay → Ray head and worker pods on the real node.

The CPU hello-world, aimed at the local pool, runs from the trainer image built by the harness; results land
in the GCS emulator (which pods reach on the bridge gateway); the trainer patches progress onto its
SpeedrunJob from inside its pod with its own ServiceAccount; KubeRay, not the test, marks the RayJob
SUCCEEDED.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import gcsfs
import pytest

from fixtures.operator import OperatorProcess
from fixtures.speedrunjobs import example_manifest, srj, wait_srj
from fixtures.storage import GcsEmulator
from harness.build import say
from harness.cluster import wait_for
from harness.node import NODE_NAME, RealNode
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.e2e

STEPS = 60
LOCAL_TOLERATION = {"key": "pool", "operator": "Equal", "value": "local", "effect": "NoSchedule"}
TRAINER_ACCOUNT = "speedrun-trainer"


class Timeline:
    """Seconds since apply of each milestone, printed once at the end of the test."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.monotonic() - self.started)

    def summary(self) -> str:
        return " → ".join(f"{name} {seconds:.0f} s" for name, seconds in self.marks.items())


def grant_trainer_account(cluster: ClusterFixture, namespace: str) -> None:
    """The trainer's own ServiceAccount: read its SpeedrunJob and patch its status, nothing more."""
    cluster.create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": TRAINER_ACCOUNT}}, namespace
    )
    cluster.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": TRAINER_ACCOUNT},
            "rules": [
                {"apiGroups": ["speedrun.marin.community"], "resources": ["speedrunjobs"], "verbs": ["get"]},
                {
                    "apiGroups": ["speedrun.marin.community"],
                    "resources": ["speedrunjobs/status"],
                    "verbs": ["get", "patch"],
                },
            ],
        },
        namespace,
    )
    cluster.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": TRAINER_ACCOUNT},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": TRAINER_ACCOUNT},
            "subjects": [{"kind": "ServiceAccount", "name": TRAINER_ACCOUNT, "namespace": namespace}],
        },
        namespace,
    )


def local_hello_world(
    name: str, image: str, emulator: GcsEmulator, output: str, **spec: Any
) -> dict[str, Any]:
    manifest = example_manifest(
        "hello-world-cpu.yaml",
        name=name,
        image=image,
        output=output,
        nodeSelector={"pool": "local"},
        tolerations=[LOCAL_TOLERATION],
        serviceAccountName=TRAINER_ACCOUNT,
        env=[{"name": k, "value": v} for k, v in emulator.env.items()],
        tracking={"mode": "disabled"},
        **spec,
    )
    manifest["spec"]["train"].update({"steps": STEPS, "stepsPerEval": STEPS // 2})
    resources = manifest["spec"]["resources"]
    resources["cpu"] = {"cores": 1}
    # PyYAML reads the example's 1.0e11 (no exponent sign) as a string; the API wants a number.
    resources["peakFlopsPerChip"] = float(resources["peakFlopsPerChip"])
    for key, value in manifest["spec"]["train"].items():
        if isinstance(value, str):
            manifest["spec"]["train"][key] = float(value)
    return manifest


def pods_of(cluster: ClusterFixture, namespace: str) -> list[dict[str, Any]]:
    return cluster.objects("pod", namespace, selector="ray.io/cluster")


def all_running(pods: list[dict[str, Any]]) -> bool:
    return len(pods) >= 2 and all(p.get("status", {}).get("phase") == "Running" for p in pods)


def follow(
    cluster: ClusterFixture,
    namespace: str,
    name: str,
    timeline: Timeline,
    done: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """Poll the SpeedrunJob, noting each milestone of the timeline as it is first seen, until ``done``."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = srj(cluster, namespace, name).get("status") or {}
        if status.get("rayJobName"):
            timeline.mark("RayJob")
        if all_running(pods_of(cluster, namespace)):
            timeline.mark("pods Running")
        if (status.get("progress") or {}).get("step", 0) >= 1:
            timeline.mark("first step reported")
        if status.get("results"):
            timeline.mark("results")
        if done(status):
            return status
        time.sleep(1)
    raise AssertionError(
        f"{namespace}/{name} did not finish: {json.dumps(srj(cluster, namespace, name), indent=1)}"
    )


def test_hello_world_trains_through_kuberay_on_the_real_node_and_succeeds(
    cluster: ClusterFixture,
    cluster_namespace: str,
    real_node: RealNode,
    operator: OperatorProcess,
    gcs_emulator: GcsEmulator,
) -> None:
    assert real_node.image_set is not None
    image = real_node.image_set.images["speedrun-trainer"].ref
    grant_trainer_account(cluster, cluster_namespace)
    output = gcs_emulator.url("e2e", cluster_namespace)
    timeline = Timeline()
    cluster.create(local_hello_world("hello-real", image, gcs_emulator, output), cluster_namespace)

    status = follow(
        cluster,
        cluster_namespace,
        "hello-real",
        timeline,
        lambda s: s.get("phase") in ("Succeeded", "Failed"),
    )
    timeline.mark(f"{status['phase']}")
    say(f"e2e timeline (apply → ...): {timeline.summary()}")
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)

    job = json.loads(
        cluster.kubectl(
            "get",
            "rayjob",
            status["rayJobName"],
            "-n",
            cluster_namespace,
            "-o",
            "json",
            "--show-managed-fields",
        ).stdout
    )
    assert job["status"]["jobStatus"] == "SUCCEEDED"
    assert job["status"]["jobDeploymentStatus"] == "Complete"
    managed = [f["manager"] for f in job["metadata"]["managedFields"] if f.get("subresource") == "status"]
    say(f"RayJob status written by: {sorted(set(managed))}")
    assert managed and set(managed) <= {"ray-operator", "manager", "kuberay-operator"}, managed

    results = status["results"]
    assert math.isfinite(results["evalBpb"]) and results["evalBpb"] > 0
    assert results["resultsUrl"].startswith(output)
    fs = gcsfs.GCSFileSystem(endpoint_url=gcs_emulator.endpoint, token="anon")
    written = json.loads(fs.cat(results["resultsUrl"]))
    # The bundled corpus is evaluated on its own split, so the Marin (Paloma C4) key stays empty.
    run_info = written["runs"][0]["run_info"]
    assert run_info["eval_bpb"] == pytest.approx(results["evalBpb"])
    assert run_info["eval/paloma/c4_en/bpb"] is None
    assert run_info["steps_completed"] == STEPS
    assert run_info["image"] == image
    assert status["progress"]["totalSteps"] == STEPS
    assert 1 <= status["progress"]["step"] <= STEPS
    for key in ("RayJob", "pods Running", "first step reported", "results"):
        assert key in timeline.marks, timeline.summary()


def test_deleting_the_speedrunjob_mid_run_removes_every_pod_and_keeps_the_results_folder(
    cluster: ClusterFixture,
    cluster_namespace: str,
    real_node: RealNode,
    operator: OperatorProcess,
    gcs_emulator: GcsEmulator,
) -> None:
    assert real_node.image_set is not None
    image = real_node.image_set.images["speedrun-trainer"].ref
    grant_trainer_account(cluster, cluster_namespace)
    output = gcs_emulator.url("e2e-deleted", cluster_namespace)
    manifest = local_hello_world("deleted", image, gcs_emulator, output)
    manifest["spec"]["train"].update({"steps": 2000, "stepsPerCheckpoint": 20})
    cluster.create(manifest, cluster_namespace)
    wait_srj(
        cluster,
        cluster_namespace,
        "deleted",
        lambda s: (s.get("progress") or {}).get("step", 0) >= 25,
        "training past its first checkpoint",
        timeout=600,
    )
    cluster.kubectl("delete", "speedrunjob", "deleted", "-n", cluster_namespace, "--wait=true", timeout=180)
    wait_for(lambda: not pods_of(cluster, cluster_namespace), what="every Ray pod gone", timeout=180)
    assert cluster.objects("rayjob", cluster_namespace) == []
    assert cluster.objects("raycluster", cluster_namespace) == []
    fs = gcsfs.GCSFileSystem(endpoint_url=gcs_emulator.endpoint, token="anon")
    assert fs.ls(output.removeprefix("gs://")), "the results folder must stay"
    node_pods = cluster.objects("pod", cluster_namespace, field_selector=f"spec.nodeName={NODE_NAME}")
    assert node_pods == []
