"""The README's "Deploy on GKE" commands agree with what the operator selects and what the chart takes.

Each node pool made there is checked against the placement the operator computes for the example it names
(GKE's accelerator type, machine type, topology, hosts, taints); each `--set` against the chart's values; the
images against docker/build.sh's names; the Workload Identity binding against the chart's training
ServiceAccount and namespace.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from speedrun_operator import contract
from speedrun_operator.manifests import load_job

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "speedrun-operator"
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@dataclass
class Command:
    argv: list[str]
    comments: list[str]  # the comment lines just above it, and a `# taints:` line just below

    def flag(self, name: str) -> str:
        values = self.flags(name)
        assert len(values) == 1, f"{name} given {len(values)} times in {shlex.join(self.argv)}"
        return values[0]

    def flags(self, name: str) -> list[str]:
        found = []
        for i, word in enumerate(self.argv):
            if word.startswith(f"{name}="):
                found.append(word.split("=", 1)[1])
            elif word == name:
                found.append(self.argv[i + 1])
        return found


def gke_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Deploy on GKE\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def commands() -> tuple[dict[str, str], list[Command]]:
    """The section's shell commands (continuations joined, variables from its `export` lines expanded)."""
    env: dict[str, str] = {}
    found: list[Command] = []
    for block in re.findall(r"```sh\n(.*?)```", gke_section(), re.S):
        comments: list[str] = []
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("# taints:") and found:
                found[-1].comments.append(line)
            elif line.startswith("#"):
                comments.append(line)
            elif line:
                expanded = re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), m.group(0)), line)
                argv = shlex.split(expanded)
                if argv[0] == "export":
                    env.update(dict(pair.split("=", 1) for pair in argv[1:]))
                else:
                    found.append(Command(argv, comments))
                comments = []
    return env, found


ENV, COMMANDS = commands()


def named(*prefix: str) -> list[Command]:
    return [c for c in COMMANDS if c.argv[: len(prefix)] == list(prefix)]


def helm_sets() -> dict[str, str]:
    (install,) = [c for c in named("helm", "install") if "helm/speedrun-operator" in c.argv]
    return dict(value.split("=", 1) for value in install.flags("--set"))


def test_each_node_pool_carries_the_labels_and_taints_the_operator_selects_for_its_example() -> None:
    pools = named("gcloud", "container", "node-pools", "create")
    kinds = set()
    for pool in pools:
        (example,) = [m for c in pool.comments for m in re.findall(r"examples/[\w.-]+\.yaml", c)]
        where = contract.placement(load_job(ROOT / example).spec.resources)
        kinds.add(where.kind)
        assert pool.flag("--cluster") == ENV["CLUSTER"] and pool.flag("--workload-metadata") == "GKE_METADATA"
        if where.kind == "gpu":
            accelerator = dict(part.split("=", 1) for part in pool.flag("--accelerator").split(","))
            assert accelerator["type"] == where.node_selector[contract.GKE_GPU_LABEL], example
            assert int(accelerator["count"]) == where.chips_per_host, example
        else:
            assert pool.flag("--machine-type") == where.machine_type, example
            assert pool.flag("--tpu-topology") == where.node_selector[contract.GKE_TPU_TOPOLOGY_LABEL], (
                example
            )
            assert int(pool.flag("--num-nodes")) == where.hosts_per_replica, example
        # The taint GKE puts on the pool's nodes is the one the worker pods tolerate.
        (taint,) = [c.removeprefix("# taints:").strip() for c in pool.comments if c.startswith("# taints:")]
        key, effect = re.fullmatch(r"([\w./-]+)=\w+:(\w+)", taint).groups()  # type: ignore[union-attr]
        assert [(t["key"], t["operator"], t["effect"]) for t in where.tolerations] == [
            (key, "Exists", effect)
        ]
    assert kinds == {"gpu", "tpu"}
    assert any(contract.placement(load_job(ROOT / e).spec.resources).multihost for e in pool_examples(pools))


def pool_examples(pools: list[Command]) -> list[str]:
    return [m for pool in pools for c in pool.comments for m in re.findall(r"examples/[\w.-]+\.yaml", c)]


def test_the_cluster_has_workload_identity_and_the_bucket_is_bound_to_the_training_service_account() -> None:
    (cluster,) = named("gcloud", "container", "clusters", "create")
    assert cluster.argv[4] == ENV["CLUSTER"]
    pool = cluster.flag("--workload-pool")
    assert pool == f"{ENV['PROJECT']}.svc.id.goog"
    sets = helm_sets()
    google_account = sets["training.serviceAccount.gcpServiceAccount"]
    assert google_account == f"speedrun-training@{ENV['PROJECT']}.iam.gserviceaccount.com"
    (create,) = named("gcloud", "iam", "service-accounts", "create")
    assert f"{create.argv[4]}@{ENV['PROJECT']}.iam.gserviceaccount.com" == google_account
    (bucket,) = named("gcloud", "storage", "buckets", "add-iam-policy-binding")
    assert bucket.argv[4] == f"gs://{ENV['BUCKET']}"
    assert bucket.flag("--member") == f"serviceAccount:{google_account}"
    assert bucket.flag("--role") == "roles/storage.objectAdmin"
    assert sets["defaults.output"].startswith(f"gs://{ENV['BUCKET']}/")
    # The Kubernetes side: the chart's training ServiceAccount, in the namespace the chart (and the jobs) use.
    (binding,) = named("gcloud", "iam", "service-accounts", "add-iam-policy-binding")
    assert binding.argv[4] == google_account and binding.flag("--role") == "roles/iam.workloadIdentityUser"
    (install,) = [c for c in named("helm", "install") if "helm/speedrun-operator" in c.argv]
    namespace = install.flag("--namespace")
    account = VALUES["training"]["serviceAccount"]["name"]
    assert binding.flag("--member") == f"serviceAccount:{pool}[{namespace}/{account}]"
    assert VALUES["training"]["namespaces"] == []  # so the jobs run in the release namespace
    (apply,) = named("kubectl", "apply")
    assert apply.flag("-n") == namespace and (ROOT / apply.flag("-f")).is_file()


def test_every_chart_value_set_exists_and_the_images_are_the_ones_the_build_command_names() -> None:
    sets = helm_sets()
    for key in sets:
        values: Any = VALUES
        schema: Any = SCHEMA
        for part in key.split("."):
            assert part in values, f"--set {key}: no such value in values.yaml"
            assert part in schema["properties"], f"--set {key}: not in values.schema.json"
            values, schema = values[part], schema["properties"][part]
    registry = ENV["REGISTRY"]
    builds = named("make", "images")
    built = [dict(arg.split("=", 1) for arg in b.argv[2:]) for b in builds]
    assert all(b["REGISTRY"] == registry and b["PUSH"] == "1" for b in built)
    assert {b["ACCELERATOR"] for b in built} == {"cuda", "tpu"}
    # docker/build.sh's names: REGISTRY/speedrun-operator:TAG, REGISTRY/speedrun-trainer:TAG-ACCELERATOR.
    script = (ROOT / "docker" / "build.sh").read_text()
    assert '"${registry}/speedrun-operator:${tag}"' in script
    assert '"${registry}/speedrun-trainer:${tag}-${accelerator}"' in script
    assert (sets["image.repository"], sets["image.tag"]) == (f"{registry}/speedrun-operator", VERSION)
    assert sets["defaults.trainerImage"] == f"{registry}/speedrun-trainer:{VERSION}-cuda"
    # The pushed registry is the Artifact Registry repository created and authorised above.
    (repository,) = named("gcloud", "artifacts", "repositories", "create")
    host = f"{repository.flag('--location')}-docker.pkg.dev"
    assert registry == f"{host}/{ENV['PROJECT']}/{repository.argv[4]}"
    assert named("gcloud", "auth", "configure-docker")[0].argv[3] == host


def test_kuberay_is_the_version_the_chart_and_the_tests_use() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    (dependency,) = [d for d in chart["dependencies"] if d["name"] == "kuberay-operator"]
    (repo,) = named("helm", "repo", "add")
    assert repo.argv[3:5] == ["kuberay", dependency["repository"]]
    (install,) = [c for c in named("helm", "install") if "kuberay/kuberay-operator" in c.argv]
    assert install.flag("--version") == dependency["version"]
    assert named("helm", "dependency", "build")[0].argv[3] == "helm/speedrun-operator"


def test_the_chart_warns_when_an_image_is_left_at_its_placeholder() -> None:
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    for key, value in [
        ("image.repository", VALUES["image"]["repository"]),
        ("defaults.trainerImage", VALUES["defaults"]["trainerImage"]),
    ]:
        assert value.startswith("REGISTRY/"), f"{key} defaults to {value}, a registry someone may serve"
        assert f'{{{{- if hasPrefix "REGISTRY/" .Values.{key} }}}}' in notes
        assert f"WARNING: {key} is the placeholder" in notes
