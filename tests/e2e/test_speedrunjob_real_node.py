"""A SpeedrunJob trains for real: operator → RayJob → KubeRay → Ray head and worker pods on the real node.

The CPU hello-world, aimed at the local pool, runs from the trainer image built by the harness; results land
in the GCS emulator (which pods reach on the bridge gateway); the trainer patches progress onto its
SpeedrunJob from inside its pod with its own ServiceAccount; KubeRay, not the test, marks the RayJob
SUCCEEDED.
"""

from __future__ import annotations

import json
import math

import gcsfs
import pytest

from fixtures.operator import OperatorProcess
from fixtures.real_node_jobs import (
    STEPS,
    Timeline,
    follow,
    own_hello_world,
    pods_of,
    trainer_image,
)
from fixtures.speedrunjobs import srj, wait_srj
from fixtures.storage import GcsEmulator
from fixtures.trainer import step_durations
from harness.build import say
from harness.cluster import wait_for
from harness.node import NODE_NAME, RealNode
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.e2e


def test_hello_world_trains_through_kuberay_on_the_real_node_and_succeeds(
    cluster: ClusterFixture,
    cluster_namespace: str,
    real_node: RealNode,
    operator: OperatorProcess,
    gcs_emulator: GcsEmulator,
) -> None:
    output = gcs_emulator.url("e2e", cluster_namespace)
    manifest = own_hello_world(cluster, cluster_namespace, real_node, gcs_emulator, "hello-real", output)
    timeline = Timeline()
    cluster.create(manifest, cluster_namespace)

    status = follow(cluster, cluster_namespace, "hello-real", timeline)
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
    assert run_info["image"] == trainer_image(real_node)
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
    output = gcs_emulator.url("e2e-deleted", cluster_namespace)
    manifest = own_hello_world(cluster, cluster_namespace, real_node, gcs_emulator, "deleted", output)
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


def test_losing_the_ray_head_mid_run_retries_it_and_resumes_from_the_checkpoint_counting_each_step_once(
    cluster: ClusterFixture,
    cluster_namespace: str,
    real_node: RealNode,
    operator: OperatorProcess,
    gcs_emulator: GcsEmulator,
) -> None:
    output = gcs_emulator.url("e2e-head-lost", cluster_namespace)
    steps, every = 300, 20
    manifest = own_hello_world(cluster, cluster_namespace, real_node, gcs_emulator, "head-lost", output)
    manifest["spec"]["train"].update({"steps": steps, "stepsPerCheckpoint": every})
    cluster.create(manifest, cluster_namespace)
    fs = gcsfs.GCSFileSystem(endpoint_url=gcs_emulator.endpoint, token="anon")
    checkpoint = f"{output}/checkpoints/head-lost/step-{every}/metadata.json".removeprefix("gs://")
    wait_for(
        lambda: fs.invalidate_cache() or fs.exists(checkpoint),
        what=f"the checkpoint at step {every} in the emulator",
        timeout=600,
        interval=2,
    )
    (head,) = cluster.objects("pod", cluster_namespace, selector="ray.io/node-type=head")
    say(
        f"deleting the Ray head {head['metadata']['name']} at step "
        f"{(srj(cluster, cluster_namespace, 'head-lost')['status'].get('progress') or {}).get('step')}"
    )
    cluster.kubectl("delete", "pod", head["metadata"]["name"], "-n", cluster_namespace, "--wait=true")

    timeline = Timeline()
    status = follow(cluster, cluster_namespace, "head-lost", timeline)
    say(f"after losing the head: {timeline.summary()}; phase {status['phase']}")
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)
    assert status["attempts"] == 2
    assert status["rayClusterName"] != head["metadata"]["labels"]["ray.io/cluster"], "a new Ray cluster"
    run_info = json.loads(fs.cat(status["results"]["resultsUrl"]))["runs"][0]["run_info"]
    attempts = step_durations(f"{output}/head-lost/steps")
    assert len(attempts) == 2, attempts.keys()
    lost, resumed = (attempts[name] for name in sorted(attempts))
    resumed_from = min(resumed)
    # Levanter's checkpoint step-N holds the state after step N, so training resumes at step N + 1.
    assert resumed_from > every and (resumed_from - 1) % every == 0
    assert max(resumed) == steps - 1
    assert set(lost) >= set(range(resumed_from)), "the lost attempt's records up to its checkpoint"
    expected = sum(d for step, d in lost.items() if step < resumed_from) + sum(resumed.values())
    assert (run_info["steps_completed"], run_info["attempts"]) == (steps, 2)
    assert run_info["training_time"] == pytest.approx(expected, rel=1e-9)
