"""Two CPU hosts standing in for a multi-host slice train through KubeRay on the real node: two worker pods,
one JAX process each (joined through JAX's distributed initialisation, collectives over gloo), the batch
split between them; one of them records the steps and writes the results. Losing one pod fails the attempt
of the whole slice, and the retry on a new cluster resumes both hosts from the same checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import gcsfs
import pytest

from fixtures.operator import OperatorProcess
from fixtures.real_node_jobs import Timeline, follow, own_two_host_job, worker_pods
from fixtures.storage import GcsEmulator
from fixtures.trainer import SPEEDRUN, step_durations
from harness.build import say
from harness.cluster import wait_for
from harness.node import RealNode
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.e2e

HOSTS = 2
LOST_HOST_NOTICED_WITHIN = 240
"""Seconds from deleting a worker pod to the SpeedrunJob's retry: JAX's heartbeat timeout (100 s) bounds how
long a surviving host can sit in a collective with the lost one; the rest is KubeRay starting the retry."""


def _both_hosts_running(cluster: ClusterFixture, namespace: str) -> list[str]:
    pods = worker_pods(cluster, namespace)
    running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
    return sorted(p["metadata"]["name"] for p in running) if len(running) == HOSTS else []


def test_two_cpu_hosts_train_as_one_slice_through_kuberay_and_write_one_results_file(
    cluster: ClusterFixture,
    cluster_namespace: str,
    real_node: RealNode,
    operator: OperatorProcess,
    gcs_emulator: GcsEmulator,
    tmp_path: Path,
) -> None:
    output = gcs_emulator.url("e2e-two-hosts", cluster_namespace)
    steps = 20
    manifest = own_two_host_job(cluster, cluster_namespace, real_node, gcs_emulator, "two-hosts", output)
    manifest["spec"]["train"].update({"steps": steps, "stepsPerEval": steps})
    timeline = Timeline()
    cluster.create(manifest, cluster_namespace)
    hosts = wait_for(
        lambda: _both_hosts_running(cluster, cluster_namespace), what="two worker pods Running", timeout=900
    )
    say(f"two hosts: {hosts}")

    status = follow(cluster, cluster_namespace, "two-hosts", timeline, timeout=1500)
    say(f"e2e timeline (apply → ...): {timeline.summary()}")
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)

    fs = gcsfs.GCSFileSystem(endpoint_url=gcs_emulator.endpoint, token="anon")
    found = fs.find(output.removeprefix("gs://"))
    written = [name for name in found if name.endswith("speedrun_results.json")]
    assert written == [status["results"]["resultsUrl"].removeprefix("gs://")]
    run_info = json.loads(fs.cat(written[0]))["runs"][0]["run_info"]
    # One CPU device per process: two devices only if both processes joined one JAX runtime.
    assert (run_info["num_devices"], run_info["num_chips"]) == (HOSTS, HOSTS)
    (records,) = step_durations(f"{output}/two-hosts/steps").values()  # one writer, one attempt
    assert sorted(records) == list(range(steps))
    assert (run_info["steps_completed"], run_info["attempts"]) == (steps, 1)
    assert run_info["training_time"] == pytest.approx(sum(records.values()), rel=1e-9)
    train = manifest["spec"]["train"]
    assert run_info["total_tokens"] == steps * train["batchSize"] * manifest["spec"]["model"]["seqLen"]

    exported = tmp_path / "two-hosts"
    env = {**os.environ, **gcs_emulator.env}
    export = subprocess.run(
        [SPEEDRUN, "export", status["results"]["resultsUrl"], str(exported)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert export.returncode == 0, export.stderr
    validate = subprocess.run(
        [SPEEDRUN, "validate", str(exported)], capture_output=True, text=True, env=env, timeout=300
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_losing_one_host_fails_the_slices_attempt_and_the_retry_resumes_both_counting_each_step_once(
    cluster: ClusterFixture,
    cluster_namespace: str,
    real_node: RealNode,
    operator: OperatorProcess,
    gcs_emulator: GcsEmulator,
) -> None:
    output = gcs_emulator.url("e2e-host-lost", cluster_namespace)
    steps, every = 300, 25
    manifest = own_two_host_job(cluster, cluster_namespace, real_node, gcs_emulator, "host-lost", output)
    manifest["spec"]["train"].update({"steps": steps, "stepsPerCheckpoint": every, "stepsPerEval": steps})
    cluster.create(manifest, cluster_namespace)
    fs = gcsfs.GCSFileSystem(endpoint_url=gcs_emulator.endpoint, token="anon")
    checkpoint = f"{output}/checkpoints/host-lost/step-{every}/metadata.json".removeprefix("gs://")
    wait_for(
        lambda: fs.invalidate_cache() or fs.exists(checkpoint),
        what=f"the checkpoint at step {every} in the emulator",
        timeout=1500,
        interval=2,
    )
    hosts = _both_hosts_running(cluster, cluster_namespace)
    assert hosts, "both hosts train until one is lost"
    (first,) = [p for p in worker_pods(cluster, cluster_namespace) if p["metadata"]["name"] == hosts[0]]
    say(f"deleting worker {hosts[0]} of {hosts}")
    timeline = Timeline()
    cluster.kubectl("delete", "pod", hosts[0], "-n", cluster_namespace, "--wait=true")
    timeline.mark("pod deleted")

    status = follow(cluster, cluster_namespace, "host-lost", timeline, timeout=1500)
    say(f"after losing a host: {timeline.summary()}; phase {status['phase']}")
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)
    assert status["attempts"] == 2
    assert status["rayClusterName"] != first["metadata"]["labels"]["ray.io/cluster"], "a new Ray cluster"
    assert timeline.marks["retried on a new cluster"] < LOST_HOST_NOTICED_WITHIN, timeline.summary()

    attempts = step_durations(f"{output}/host-lost/steps")
    assert len(attempts) == 2, attempts.keys()  # one writer per attempt, whichever host was lost
    lost, resumed = (attempts[name] for name in sorted(attempts))
    resumed_from = min(resumed)
    # Levanter's checkpoint step-N holds the state after step N, so training resumes at step N + 1.
    assert resumed_from > every and (resumed_from - 1) % every == 0
    assert sorted(resumed) == list(range(resumed_from, steps))
    assert set(lost) >= set(range(resumed_from)), "the lost attempt's records up to its checkpoint"
    run_info = json.loads(fs.cat(status["results"]["resultsUrl"]))["runs"][0]["run_info"]
    expected = sum(d for step, d in lost.items() if step < resumed_from) + sum(resumed.values())
    assert (run_info["steps_completed"], run_info["attempts"], run_info["num_devices"]) == (steps, 2, HOSTS)
    assert run_info["training_time"] == pytest.approx(expected, rel=1e-9)
    say(f"lost host noticed and retried {timeline.marks['retried on a new cluster']:.0f} s after deletion")
