"""GitOps: the example submission repo renders and validates, Argo CD's health check reads real SpeedrunJobs
right, and nothing the operator writes makes a synced SpeedrunJob drift from Git.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import fsspec
import pytest
import yaml

from fixtures.argocd import health
from fixtures.operator import OperatorProcess
from fixtures.speedrunjobs import (
    ADMITTED_BUT_INVALID_FIELD,
    ADMITTED_BUT_INVALID_TRAIN,
    apply,
    example_manifest,
    marin_results_json,
    phase_is,
    set_rayjob_status,
    srj,
    wait_srj,
)
from fixtures.storage import GcsEmulator
from harness import build
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
REPO = ROOT / "examples" / "gitops"
RUNS = sorted(path.parent.name for path in (REPO / "runs").glob("*/speedrunjob.yaml"))
KOPF_PREFIX = "speedrun.marin.community/"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def rendered_repo(namespace: str | None = None) -> list[dict[str, Any]]:
    """``kubectl kustomize examples/gitops``, as Argo CD renders it, optionally moved to ``namespace``."""
    kubectl = build.ensure(["kubectl"])["kubectl"].path
    out = subprocess.run([str(kubectl), "kustomize", str(REPO)], capture_output=True, text=True, check=True)
    objects = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
    for obj in objects:
        if namespace:
            obj["metadata"]["namespace"] = namespace
    return objects


def speedrun(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "speedrun_operator.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_the_submission_repo_renders_one_speedrunjob_per_run_folder_and_each_validates(
    tmp_path: Path,
) -> None:
    objects = rendered_repo()
    assert [o["kind"] for o in objects] == ["SpeedrunJob"] * len(RUNS) and len(RUNS) >= 3
    assert sorted(o["metadata"]["name"] for o in objects) == RUNS, "each run folder is named after its job"
    for obj in objects:
        original = yaml.safe_load((REPO / "runs" / obj["metadata"]["name"] / "speedrunjob.yaml").read_text())
        assert obj["spec"] == original["spec"], "kustomize must never touch a spec"
        assert obj["metadata"]["namespace"] == "speedruns"
        assert obj["metadata"]["labels"] == {"speedrun.marin.community/submitted-via": "gitops"}

    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(objects))
    result = speedrun("validate", str(rendered), str(REPO / "runs"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{1 + len(RUNS)} files valid"


def provisioned(cluster: ClusterFixture, namespace: str, name: str) -> dict[str, Any]:
    return wait_srj(
        cluster,
        namespace,
        name,
        lambda s: s.get("phase") == "Provisioning" and "rayJobName" in s,
        "Provisioning",
    )


def run_to_success(
    cluster: ClusterFixture, gcs: GcsEmulator, namespace: str, name: str, bpb: float
) -> list[dict[str, Any]]:
    """Drive a created GPU SpeedrunJob to Succeeded as KubeRay would; return it as seen in each phase."""
    seen = [provisioned(cluster, namespace, name)]
    rayjob = seen[0]["status"]["rayJobName"]
    wait_srj(cluster, namespace, name, lambda s: "rayClusterName" in s, "the RayCluster's name", timeout=120)
    set_rayjob_status(cluster, namespace, rayjob, {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"})
    seen.append(wait_srj(cluster, namespace, name, phase_is("Running"), "Running"))
    with fsspec.open(gcs.url("runs", name, "speedrun_results.json"), "w") as handle:
        handle.write(marin_results_json(bpb))
    done = {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "endTime": "2026-11-25T12:00:00Z"}
    set_rayjob_status(cluster, namespace, rayjob, done)
    seen.append(wait_srj(cluster, namespace, name, lambda s: "results" in s, "Succeeded with results"))
    return seen


def test_argocd_health_of_real_speedrunjobs_in_every_phase(
    operator: OperatorProcess, gcs_emulator: GcsEmulator, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    ns = cluster_namespace
    (a100, *_) = [o for o in rendered_repo(ns) if o["spec"]["resources"].get("gpu", {}).get("type") == "A100"]
    created = apply(cluster, ns, a100)
    assert "status" not in created, "as stored before the operator saw it"
    assert health(created)["status"] == "Progressing"

    provisioning, running, succeeded = run_to_success(
        cluster, gcs_emulator, ns, a100["metadata"]["name"], 1.25
    )
    assert health(provisioning) == {
        "status": "Progressing",
        "message": "Provisioning: " + (provisioning["status"]["message"]),
    }
    assert health(running)["status"] == "Progressing" and health(running)["message"].startswith("Running")
    assert health(succeeded) == {"status": "Healthy", "message": "Succeeded: eval bpb 1.2500"}

    apply(cluster, ns, example_manifest("tpu-v4-8.yaml", name="queued", queueName="team-a"))
    queued = wait_srj(cluster, ns, "queued", phase_is("Queued"), "Queued")
    assert health(queued)["status"] == "Progressing" and health(queued)["message"].startswith("Queued")

    apply(cluster, ns, example_manifest("tpu-v4-8.yaml", name="paused", suspend=True))
    suspended = wait_srj(cluster, ns, "paused", phase_is("Suspended"), "Suspended")
    assert health(suspended)["status"] == "Suspended"

    apply(cluster, ns, example_manifest("tpu-v4-8.yaml", name="invalid", train=ADMITTED_BUT_INVALID_TRAIN))
    failed = wait_srj(cluster, ns, "invalid", phase_is("Failed"), "Failed")
    assert health(failed) == {
        "status": "Degraded",
        "message": f"Failed (InvalidSpec): {failed['status']['message']}",
    }
    assert ADMITTED_BUT_INVALID_FIELD in health(failed)["message"]


def test_nothing_the_operator_writes_makes_a_synced_repo_drift(
    operator: OperatorProcess,
    gcs_emulator: GcsEmulator,
    cluster: ClusterFixture,
    cluster_namespace: str,
    tmp_path: Path,
) -> None:
    ns = cluster_namespace
    objects = rendered_repo(ns)
    synced = tmp_path / "repo.yaml"
    synced.write_text(yaml.safe_dump_all(objects))
    cluster.kubectl("apply", "-f", str(synced))  # what Argo CD does on sync (client-side apply)

    (a100,) = [
        o["metadata"]["name"] for o in objects if o["spec"]["resources"].get("gpu", {}).get("type") == "A100"
    ]
    run_to_success(cluster, gcs_emulator, ns, a100, 1.3)
    for other in {o["metadata"]["name"] for o in objects} - {a100}:
        provisioned(cluster, ns, other)

    diff = cluster.kubectl("diff", "-f", str(synced), check=False)
    assert (diff.returncode, diff.stdout) == (0, ""), diff.stdout + diff.stderr
    for desired in objects:
        live = srj(cluster, ns, desired["metadata"]["name"])
        assert live["spec"] == desired["spec"]
        assert live["metadata"]["labels"] == desired["metadata"]["labels"]
        written = set(live["metadata"].get("annotations", {})) - {LAST_APPLIED}
        assert written and all(key.startswith(KOPF_PREFIX) for key in written), written
        assert set(live["metadata"].get("finalizers", [])) <= {f"{KOPF_PREFIX}finalizer"}
