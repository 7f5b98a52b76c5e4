"""The trainer reports onto its SpeedrunJob: status.progress while it trains and once more at the end; the
results are the operator's to publish (from the results file), never the trainer's."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures.speedrunjobs import field_managers
from fixtures.trainer import JobFactory, SpeedrunProcess, read_run_info
from harness.pytest_plugin import ClusterFixture
from speedrun_operator.api import GROUP, PLURAL, VERSION

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

STEPS = 300


def status_of(cluster: ClusterFixture, namespace: str, name: str) -> dict[str, Any]:
    obj = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    assert isinstance(obj, dict)
    status: dict[str, Any] = obj.get("status") or {}
    return status


def test_speedrun_train_patches_progress_onto_its_job_and_leaves_the_rest_to_the_operator(
    without_operator: None,
    speedrun_crd: ClusterFixture,
    cluster_namespace: str,
    tiny_job: JobFactory,
    tmp_path: Path,
    speedrun_processes: Callable[..., SpeedrunProcess],
) -> None:
    cluster = speedrun_crd
    job = tiny_job(name="reports", train={"steps": STEPS})
    manifest = job.manifest()
    manifest["metadata"]["namespace"] = cluster_namespace
    cluster.create(manifest, namespace=cluster_namespace)
    # What the operator owns: the trainer must leave it alone.
    operator_status = {"phase": "Running", "accelerator": "cpu"}
    cluster.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, cluster_namespace, PLURAL, job.name, {"status": operator_status}
    )

    output = tmp_path / "out"
    trainer = speedrun_processes(
        ["train", "--job", f"{cluster_namespace}/{job.name}", "--output", str(output)],
        cwd=tmp_path,
        log=tmp_path / "trainer.log",
        env={"KUBECONFIG": str(cluster.kubeconfig)},
    )
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 300
    while trainer.proc.poll() is None and time.monotonic() < deadline:
        progress = status_of(cluster, cluster_namespace, job.name).get("progress")
        if progress and (not seen or progress != seen[-1]):
            seen.append(progress)
        time.sleep(0.5)
    assert trainer.wait(timeout=60) == 0, trainer.output()[-4000:]

    mid_run = [p for p in seen if p["step"] < STEPS]
    assert mid_run, f"no progress seen while training: {seen}"
    first = mid_run[0]
    assert first["totalSteps"] == STEPS
    assert first["display"] == f"{first['step']}/{STEPS} ({100 * first['step'] / STEPS:.0f}%)"
    assert {"loss", "tokensPerSecond", "mfu", "etaSeconds", "updatedAt"} <= set(first)
    # At most one progress patch every ~5 s while training (updatedAt has whole seconds).
    times = [time.mktime(time.strptime(p["updatedAt"], "%Y-%m-%dT%H:%M:%SZ")) for p in mid_run]
    assert all(later - earlier >= 4 for earlier, later in itertools.pairwise(times))

    status = status_of(cluster, cluster_namespace, job.name)
    assert status["progress"]["step"] == STEPS
    info = read_run_info(output / job.name / "speedrun_results.json")
    assert info["steps_completed"] == STEPS
    assert "results" not in status
    assert "speedrun-trainer" in field_managers(cluster, "srj", cluster_namespace, job.name, "status")
    assert {key: status[key] for key in operator_status} == operator_status
