"""`speedrun export NAMESPACE/NAME DIR` reads a finished SpeedrunJob from the API server and follows its
status.results.resultsUrl to the results, writing a folder that `speedrun validate` accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fixtures.submissions import finished_run, speedrun_process
from fixtures.trainer import JobFactory
from harness.pytest_plugin import ClusterFixture
from speedrun_operator.api import GROUP, PLURAL, VERSION, Results
from speedrun_operator.manifests import load_job

pytestmark = pytest.mark.cluster


def submit(cluster: ClusterFixture, namespace: str, manifest: dict[str, Any], status: dict[str, Any]) -> None:
    manifest["metadata"]["namespace"] = namespace
    cluster.create(manifest, namespace=namespace)
    cluster.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, manifest["metadata"]["name"], {"status": status}
    )


def test_export_follows_a_succeeded_jobs_results_url(
    speedrun_crd: ClusterFixture, cluster_namespace: str, tiny_job: JobFactory, tmp_path: Path
) -> None:
    job = tiny_job(name="finished")
    results = finished_run(tmp_path / "output", job) / "speedrun_results.json"
    info = json.loads(results.read_text())["runs"][0]["run_info"]
    published = Results.from_run_info(info, str(results)).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    submit(speedrun_crd, cluster_namespace, job.manifest(), {"phase": "Succeeded", "results": published})
    destination = tmp_path / "submission" / "finished"

    exported = speedrun_process(
        "export",
        f"{cluster_namespace}/finished",
        str(destination),
        env={"KUBECONFIG": str(speedrun_crd.kubeconfig)},
    )

    assert exported.returncode == 0, exported.stderr
    assert (destination / "speedrun_results.json").read_bytes() == results.read_bytes()
    assert load_job(destination / "speedrun_job.yaml").spec == job.spec
    validated = speedrun_process("validate", str(destination))
    assert validated.returncode == 0, validated.stderr


def test_a_job_still_running_or_missing_is_refused_with_one_line(
    speedrun_crd: ClusterFixture, cluster_namespace: str, tiny_job: JobFactory, tmp_path: Path
) -> None:
    submit(speedrun_crd, cluster_namespace, tiny_job(name="running").manifest(), {"phase": "Running"})
    env = {"KUBECONFIG": str(speedrun_crd.kubeconfig)}

    running = speedrun_process("export", f"{cluster_namespace}/running", str(tmp_path / "out"), env=env)
    missing = speedrun_process("export", f"{cluster_namespace}/absent", str(tmp_path / "out"), env=env)

    assert (running.returncode, missing.returncode) == (2, 2)
    # A session operator may already have moved the job on (e.g. to Provisioning): any phase without results.
    assert re.fullmatch(
        rf"{cluster_namespace}/running: no results yet \(phase (Running|Pending|Provisioning|Failed)\); "
        r"export once it has succeeded\n",
        running.stderr,
    ), running.stderr
    assert missing.stderr == f"{cluster_namespace}/absent: no such SpeedrunJob\n"
    assert not (tmp_path / "out").exists()
