"""The generated CRD on a real API server: examples accepted, CEL rules enforced with their messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fixtures.speedrunjobs import (
    ADMITTED_BUT_INVALID_TRAIN,
    EXAMPLES,
    example_manifest,
)
from harness.pytest_plugin import ClusterFixture
from speedrun_operator.crd import IMMUTABLE_MESSAGE

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_passes_a_server_side_dry_run(speedrun_crd: ClusterFixture, path: Path) -> None:
    result = speedrun_crd.kubectl("create", "--dry-run=server", "-n", "default", "-f", str(path), check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"resources": {"gpu": {"type": "A100"}, "tpu": {"type": "v4-8"}}},
            "resources: set exactly one of gpu, tpu or cpu",
        ),
        ({"model": {"hiddenDim": 64}}, "model: name a preset (e.g. llama_nano) or give seqLen"),
        (
            {"train": {"steps": 10, "learningRate": 0.1}},
            "train: set exactly one of batchSize or batchSchedule",
        ),
    ],
)
def test_the_api_server_refuses_a_spec_that_breaks_a_cel_rule(
    speedrun_crd: ClusterFixture, change: dict[str, object], message: str
) -> None:
    manifest = example_manifest("marin-hello-world-a100.yaml", name="cel-check", **change)
    result = speedrun_crd.kubectl(
        "create", "--dry-run=server", "-n", "default", "-f", "-", check=False, input=json.dumps(manifest)
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_the_spec_is_frozen_once_the_run_started_except_suspend(
    speedrun_crd: ClusterFixture, cluster_namespace: str
) -> None:
    # A spec the operator refuses keeps a running operator from starting this run itself, so the test alone
    # decides when it "started".
    manifest = example_manifest("tpu-v4-8.yaml", name="frozen", train=ADMITTED_BUT_INVALID_TRAIN)
    speedrun_crd.create(manifest, namespace=cluster_namespace)
    patch = ["patch", "srj", "frozen", "-n", cluster_namespace, "--type=merge", "-p"]
    # Before the run starts the spec may still change.
    speedrun_crd.kubectl(*patch, json.dumps({"spec": {"description": "edited before start"}}))
    speedrun_crd.kubectl(
        *patch[:5],
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"startTime": "2026-11-25T00:00:00Z"}}),
    )
    refused = speedrun_crd.kubectl(*patch, json.dumps({"spec": {"train": {"steps": 5000}}}), check=False)
    assert refused.returncode != 0 and IMMUTABLE_MESSAGE in refused.stderr
    speedrun_crd.kubectl(*patch, json.dumps({"spec": {"suspend": True}}))
    stored = yaml.safe_load(
        speedrun_crd.kubectl("get", "srj", "frozen", "-n", cluster_namespace, "-o", "yaml").stdout
    )
    assert stored["spec"]["suspend"] is True and stored["spec"]["train"]["steps"] == 100


def test_kubectl_explain_documents_the_fields(speedrun_crd: ClusterFixture) -> None:
    explained = speedrun_crd.kubectl("explain", "speedrunjob.spec.train.stepsPerEval").stdout
    assert "Evaluate every this many steps" in explained and "Default: 1000" in explained
