"""A custom-code SpeedrunJob, applied the GitOps way, trains for real on the real node through KubeRay.

`kubectl apply -k` on a folder like examples/custom-model/: kustomize packs the .py files beside the job
into a ConfigMap with a hashed name and rewrites the job's spec.model.code.configMap.name to it (the
example's kustomizeconfig); the operator mounts that ConfigMap into the Ray head and worker pods; the
trainer imports the code there and the results record its digest. Then the same folder with broken code:
the job ends Failed once, with the file and line, on its first attempt.

Kept short for CI's budget: the example's tiny model (2 layers, 64 wide) for 20 steps, and the Ray cluster
of each job given back at once (the 2-core node holds one job's pods at a time).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import gcsfs
import pytest
import yaml

from fixtures.operator import OperatorProcess
from fixtures.real_node_jobs import Timeline, follow, own_hello_world
from fixtures.speedrunjobs import EXAMPLES, example_manifest
from fixtures.storage import GcsEmulator
from harness.build import say
from harness.node import RealNode
from harness.pytest_plugin import ClusterFixture
from speedrun_operator import contract

pytestmark = pytest.mark.e2e

STEPS = 20
EXAMPLE = EXAMPLES / "custom-model"


def gitops_folder(folder: Path, namespace: str, job: dict[str, Any], source: str) -> Path:
    """The example's folder (kustomization, its nameReference config, the code) with ``job`` in it."""
    folder.mkdir(parents=True)
    for name in ("kustomization.yaml", "kustomizeconfig"):
        shutil.copy(EXAMPLE / name, folder / name)
    (folder / "parallel_llama.py").write_text(source)
    (folder / "parallel-llama.yaml").write_text(yaml.safe_dump(job, sort_keys=False))
    with (folder / "kustomization.yaml").open("a") as kustomization:
        kustomization.write(f"namespace: {namespace}\n")
    return folder


def custom_job(base: dict[str, Any], name: str) -> dict[str, Any]:
    """The custom-code example with the real node's placement, image, output and account of ``base``."""
    example = example_manifest("custom-model/parallel-llama.yaml", name=name)
    spec = {**base["spec"], "model": example["spec"]["model"], "description": example["spec"]["description"]}
    spec["train"] = {**base["spec"]["train"], "seqLen": 128, "steps": STEPS, "stepsPerEval": STEPS}
    spec["ttlSecondsAfterFinished"] = 0
    return {**example, "spec": spec}


def test_custom_code_applied_with_kustomize_trains_through_kuberay_and_records_its_digest(
    cluster: ClusterFixture,
    cluster_namespace: str,
    real_node: RealNode,
    operator: OperatorProcess,
    gcs_emulator: GcsEmulator,
    tmp_path: Path,
) -> None:
    output = gcs_emulator.url("e2e-custom", cluster_namespace)
    base = own_hello_world(cluster, cluster_namespace, real_node, gcs_emulator, "unused", output)
    source = (EXAMPLE / "parallel_llama.py").read_text()

    folder = gitops_folder(tmp_path / "good", cluster_namespace, custom_job(base, "custom-real"), source)
    timeline = Timeline()
    cluster.kubectl("apply", "-k", str(folder))
    job = cluster.get("speedrunjob", "custom-real", cluster_namespace)
    assert job is not None
    hashed = job["spec"]["model"]["code"]["configMap"]["name"]
    assert hashed.startswith("parallel-llama-code-") and hashed != "parallel-llama-code", hashed
    stored = cluster.get("configmap", hashed, cluster_namespace)
    assert stored is not None and stored["data"]["parallel_llama.py"] == source

    status = follow(cluster, cluster_namespace, "custom-real", timeline)
    say(f"custom-code timeline (apply -k → ...): {timeline.summary()}")
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)
    digest = contract.code_digest({"parallel_llama.py": source.encode()})
    assert status["results"]["codeDigest"] == digest
    fs = gcsfs.GCSFileSystem(endpoint_url=gcs_emulator.endpoint, token="anon")
    run_info = json.loads(fs.cat(status["results"]["resultsUrl"]))["runs"][0]["run_info"]
    assert run_info["model_code"]["digest"] == digest
    assert run_info["model_code"]["source"].endswith(f"from ConfigMap {hashed}")
    assert run_info["steps_completed"] == STEPS
    assert status["results"]["modelSize"] == run_info["model_size"] == 164_032

    broken = source.replace(
        "import equinox as eqx", "import equinox as eqx\nimport no_such_module_on_the_node"
    )
    line = broken.splitlines().index("import no_such_module_on_the_node") + 1
    folder = gitops_folder(tmp_path / "broken", cluster_namespace, custom_job(base, "custom-broken"), broken)
    cluster.kubectl("apply", "-k", str(folder))
    status = follow(cluster, cluster_namespace, "custom-broken", Timeline(), timeout=600)
    assert status["phase"] == "Failed", json.dumps(status, indent=1)
    assert (status["reason"], status.get("attempts")) == ("CodeError", 1), json.dumps(status, indent=1)
    assert status["message"] == (
        f"parallel_llama.py:{line}: ModuleNotFoundError: No module named 'no_such_module_on_the_node'"
    )
