"""A tiny three-rung SpeedrunLadder trains for real: operator → one SpeedrunJob per rung → RayJob → KubeRay →
Ray pods on the real node, one rung at a time, ending with the fit in the ladder's status.

Each rung is the CPU hello-world aimed at the local pool (the harness's trainer image, its own
ServiceAccount, results in the GCS emulator), a size larger than the one before; KubeRay, not the test,
marks each RayJob SUCCEEDED.
"""

from __future__ import annotations

import json
import time
from typing import Any

import gcsfs
import pytest

from fixtures.operator import OperatorProcess
from fixtures.real_node_jobs import own_hello_world
from fixtures.storage import GcsEmulator
from harness.build import say
from harness.node import RealNode
from harness.pytest_plugin import ClusterFixture
from speedrun_operator.submissions.power_law import TARGET_FLOPS
from speedrun_operator.submissions.site_fit import site_fit

pytestmark = pytest.mark.e2e

LADDER = "tiny-real"
SIZES = {"xs": (32, 20), "s": (64, 30), "m": (96, 40)}
"""Rung: (hidden size, steps)."""
TIMEOUT_SECONDS = 2400


def tiny_ladder(base: dict[str, Any]) -> dict[str, Any]:
    spec = {key: value for key, value in base["spec"].items() if key not in ("author", "description")}
    # A finished rung's Ray cluster goes at once: the 2-core node holds one rung's pods at a time.
    spec["ttlSecondsAfterFinished"] = 0
    return {
        "apiVersion": "speedrun.marin.community/v1alpha1",
        "kind": "SpeedrunLadder",
        "metadata": {"name": LADDER},
        "spec": {
            "author": base["spec"]["author"],
            "description": "Three tiny Llamas on the real node, one after another.",
            "parallelism": 1,
            "base": spec,
            "rungs": [
                {"name": name, "model": {"hiddenDim": hidden}, "train": {"steps": steps}}
                for name, (hidden, steps) in SIZES.items()
            ],
        },
    }


def test_a_tiny_ladder_trains_rung_by_rung_through_kuberay_and_ends_with_a_fit(
    cluster: ClusterFixture,
    cluster_namespace: str,
    real_node: RealNode,
    operator: OperatorProcess,
    gcs_emulator: GcsEmulator,
) -> None:
    output = gcs_emulator.url("e2e-ladder", cluster_namespace)
    hello = own_hello_world(cluster, cluster_namespace, real_node, gcs_emulator, "unused", output)
    cluster.create(tiny_ladder(hello), cluster_namespace)

    deadline, most_at_once = time.monotonic() + TIMEOUT_SECONDS, 0
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = (cluster.get("speedrunladder", LADDER, cluster_namespace) or {}).get("status") or {}
        jobs = cluster.objects("speedrunjobs", cluster_namespace)
        running = [j for j in jobs if (j.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        most_at_once = max(most_at_once, len(running))
        if status.get("phase") in ("Succeeded", "Failed"):
            break
        time.sleep(2)
    say(f"ladder ended {status.get('phase')}: {status.get('message')}")
    assert status.get("phase") == "Succeeded", json.dumps(status, indent=1)
    assert most_at_once <= 1, "parallelism 1: one rung at a time"

    fs = gcsfs.GCSFileSystem(endpoint_url=gcs_emulator.endpoint, token="anon")
    points = []
    for rung in status["rungs"]:
        assert rung["resultsUrl"].startswith(f"{output}/{LADDER}/{LADDER}-{rung['name']}/")
        run_info = json.loads(fs.cat(rung["resultsUrl"]))["runs"][0]["run_info"]
        assert run_info["eval_bpb"] == pytest.approx(rung["evalBpb"])
        points.append((run_info["model_flops"], run_info["eval_bpb"]))
    fit = site_fit(points)
    assert fit is not None and status["fit"]["points"] == 3
    assert status["fit"]["site"]["projectedBpb"] == pytest.approx(fit.law.predict(TARGET_FLOPS), rel=1e-12)
    assert status["fit"]["evalSet"] == status["rungs"][0]["evalSet"]
