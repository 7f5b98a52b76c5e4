"""The example SpeedrunLadder through the real operator, the real KubeRay operator and the API server.

Each rung's run is reported finished as KubeRay would (its RayJob's status) after its results, Marin's own
adamw_llama_scaling results for that size, are written to the storage emulator where the trainer would
write them; on kwok's fake pods no trainer runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import fsspec
import pytest

from fixtures.operator import OperatorProcess
from fixtures.speedrunjobs import apply, example_manifest, set_rayjob_status, wait_srj
from fixtures.storage import GcsEmulator
from harness.cluster import wait_for
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
MARIN = ROOT / "tests" / "data" / "leaderboard" / "marin" / "adamw_llama_scaling"
LADDER = "adamw-llama-scaling"
RUNGS = {"130m": "130m", "300m": "300m", "520m": "520m", "1-2b": "1_2b"}
PARALLELISM = 2


def ladder(cluster: ClusterFixture, namespace: str) -> dict[str, Any]:
    found = cluster.get("speedrunladder", LADDER, namespace)
    assert found is not None
    return found


def wait_ladder(cluster: ClusterFixture, namespace: str, check: Any, what: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = ladder(cluster, namespace).get("status") or {}
        return status if check(status) else None

    try:
        found: dict[str, Any] = wait_for(probe, what=f"ladder {what}", timeout=90)
    except TimeoutError as exc:
        raise AssertionError(
            f"{exc}\nlast status: {json.dumps(ladder(cluster, namespace).get('status'))}"
        ) from None
    return found


def rung_jobs(cluster: ClusterFixture, namespace: str) -> list[dict[str, Any]]:
    return cluster.objects("speedrunjobs", namespace, selector=f"speedrun.marin.community/ladder={LADDER}")


def unfinished(cluster: ClusterFixture, namespace: str) -> list[str]:
    return [
        job["metadata"]["name"]
        for job in rung_jobs(cluster, namespace)
        if (job.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]


def rung_of(status: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in status["rungs"] if r["name"] == name)
    return found


def finish(cluster: ClusterFixture, gcs: GcsEmulator, namespace: str, rung: str) -> None:
    """Write the rung's results where its trainer would, then report its RayJob succeeded."""
    job = f"{LADDER}-{rung}"
    provisioned = wait_srj(cluster, namespace, job, lambda s: "rayJobName" in s, "its RayJob created")
    document = json.loads((MARIN / RUNGS[rung] / "speedrun_results.json").read_text())
    document["runs"][0]["run_info"]["author"] = {"name": "Your Name", "affiliation": "Your Lab", "url": None}
    with fsspec.open(gcs.url("runs", LADDER, job, "speedrun_results.json"), "w") as handle:
        handle.write(json.dumps(document))
    set_rayjob_status(
        cluster,
        namespace,
        provisioned["status"]["rayJobName"],
        {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "endTime": "2026-12-01T12:00:00Z"},
    )


def speedrun(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("speedrun")), *args]
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_the_example_ladder_runs_its_rungs_within_its_parallelism_and_fits_them_as_the_leaderboard_does(
    operator: OperatorProcess,
    gcs_emulator: GcsEmulator,
    cluster: ClusterFixture,
    cluster_namespace: str,
    tmp_path: Path,
) -> None:
    ns = cluster_namespace
    apply(cluster, ns, example_manifest("ladders/adamw-llama-scaling-v5p-32.yaml"))
    status = wait_ladder(cluster, ns, lambda s: s.get("phase") == "Running", "Running")
    assert sorted(job["metadata"]["name"] for job in rung_jobs(cluster, ns)) == [
        f"{LADDER}-130m",
        f"{LADDER}-300m",
    ], "two rungs at once, smallest first"
    owner = rung_jobs(cluster, ns)[0]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("SpeedrunLadder", LADDER, True)
    table = cluster.kubectl("get", "speedrunladder", LADDER, "-n", ns).stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "RUNGS", "PROJECTED", "PHASE"]
    assert table[1].split()[:2] == [LADDER, "0/4"] and "Running" in table[1]

    finish(cluster, gcs_emulator, ns, "130m")
    status = wait_ladder(cluster, ns, lambda s: s.get("rungsDone") == "1/4", "with the 130m rung done")
    assert rung_of(status, "130m")["evalBpb"] == pytest.approx(1.1862303018569946)
    assert "fit" not in status
    wait_for(lambda: len(rung_jobs(cluster, ns)) == 3, what="the 520m rung created", timeout=60)
    assert len(unfinished(cluster, ns)) <= PARALLELISM

    finish(cluster, gcs_emulator, ns, "300m")
    status = wait_ladder(cluster, ns, lambda s: s.get("rungsDone") == "2/4", "with two rungs done")
    assert "fit" not in status
    wait_for(lambda: len(rung_jobs(cluster, ns)) == 4, what="the 1-2b rung created", timeout=60)
    assert len(unfinished(cluster, ns)) <= PARALLELISM

    # Killed mid-ladder: the 520m run finishes while no operator watches.
    operator.kill()
    finish(cluster, gcs_emulator, ns, "520m")
    operator.start()
    status = wait_ladder(cluster, ns, lambda s: "fit" in s, "fitted from the third rung on")
    assert status["fit"]["points"] == 3 and status["rungsDone"] == "3/4"

    finish(cluster, gcs_emulator, ns, "1-2b")
    status = wait_ladder(cluster, ns, lambda s: s.get("phase") == "Succeeded", "Succeeded")
    assert status["rungsDone"] == "4/4" and status["fit"]["points"] == 4 and status["fit"]["listed"]
    assert len(rung_jobs(cluster, ns)) == 4, "no rung created twice"
    assert len(cluster.objects("rayjobs.ray.io", ns)) == 4, "no run started twice"
    assert [rung_of(status, name)["phase"] for name in RUNGS] == ["Succeeded"] * 4

    env = {**gcs_emulator.env, "KUBECONFIG": str(cluster.kubeconfig)}
    exported = tmp_path / "submission"
    result = speedrun(["export", f"{ns}/{LADDER}", str(exported)], env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (exported / LADDER).iterdir()) == sorted(f"{LADDER}-{r}" for r in RUNGS)
    result = speedrun(["leaderboard", str(exported), "--json"], env)
    assert result.returncode == 0, result.stderr
    board = next(b for b in json.loads(result.stdout)["boards"] if "groups" in b)
    (group,) = board["groups"]
    assert group["name"] == LADDER
    assert status["fit"]["site"]["projectedBpb"] == group["site_fit"]["projected_bpb"]
    assert status["fit"]["converged"]["projectedBpb"] == pytest.approx(
        group["converged_fit"]["projected_bpb"], rel=1e-9
    )
    assert status["projectedBpb"] == f"{group['site_fit']['projected_bpb']:.4f}"
    reasons = {
        e["reason"] for e in cluster.objects("events", ns, field_selector=f"involvedObject.name={LADDER}")
    }
    assert {"RungCreated", "RungFinished", "FitUpdated", "Finished"} <= reasons


def test_suspending_a_ladder_suspends_its_rungs_and_deleting_it_deletes_them(
    operator: OperatorProcess, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    ns = cluster_namespace
    apply(cluster, ns, example_manifest("ladders/adamw-llama-scaling-v5p-32.yaml"))
    wait_for(lambda: len(rung_jobs(cluster, ns)) == PARALLELISM, what="two rungs created", timeout=60)
    cluster.kubectl(
        "patch", "speedrunladder", LADDER, "-n", ns, "--type=merge", "-p", '{"spec": {"suspend": true}}'
    )
    wait_ladder(cluster, ns, lambda s: s.get("phase") == "Suspended", "Suspended")
    wait_for(
        lambda: all(job["spec"].get("suspend") for job in rung_jobs(cluster, ns)),
        what="every rung suspended",
        timeout=60,
    )
    cluster.kubectl("delete", "speedrunladder", LADDER, "-n", ns, "--wait=true", "--timeout=60s")
    wait_for(lambda: not rung_jobs(cluster, ns), what="the rungs garbage-collected", timeout=90)


@pytest.mark.parametrize("part", ["base", "rung"])
def test_the_api_server_refuses_a_ladder_with_custom_model_code(
    part: str, speedrun_crd: ClusterFixture, cluster_namespace: str
) -> None:
    manifest = example_manifest("ladders/adamw-llama-scaling-v5p-32.yaml")
    target = manifest["spec"]["base"] if part == "base" else manifest["spec"]["rungs"][1]
    target["model"] = {"family": "custom", "code": {"image": True, "module": "mine", "configClass": "My"}}
    manifest["spec"]["base"]["train"]["seqLen"] = 64
    refused = speedrun_crd.kubectl(
        "create", "-n", cluster_namespace, "-f", "-", input=json.dumps(manifest), check=False
    )
    assert refused.returncode != 0
    assert "a ladder's rungs cannot run custom model code yet" in refused.stderr, refused.stderr
