"""The RayJob builder: a pure function from a SpeedrunJob to the manifest KubeRay runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from speedrun_operator.api import SpeedrunJob
from speedrun_operator.builders import RAYJOB_NAME_LIMIT, build_rayjob, rayjob_name
from speedrun_operator.config import OperatorConfig
from speedrun_operator.manifests import load_job

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONFIG = OperatorConfig(default_image="trainer:test", default_output="gs://speedruns/runs")


def example(name: str) -> SpeedrunJob:
    return load_job(EXAMPLES / name)


def rayjob_for(name: str, **overrides: Any) -> dict[str, Any]:
    job = example(name)
    if overrides:
        job = SpeedrunJob.model_validate(
            {**job.manifest(), "spec": {**job.manifest()["spec"], **overrides}}, by_alias=True, by_name=False
        )
    return build_rayjob(job, "uid-123", CONFIG)


def worker(rayjob: dict[str, Any]) -> dict[str, Any]:
    groups = rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert len(groups) == 1
    group: dict[str, Any] = groups[0]
    return group


def container(group: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = group["template"]["spec"]["containers"][0]
    return result


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_builds_a_rayjob_owned_by_its_speedrunjob(path: Path) -> None:
    job = load_job(path)
    rayjob = build_rayjob(job, "uid-123", CONFIG)
    assert rayjob["apiVersion"] == "ray.io/v1" and rayjob["kind"] == "RayJob"
    assert len(rayjob["metadata"]["name"]) <= RAYJOB_NAME_LIMIT
    owner = rayjob["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "SpeedrunJob",
        job.name,
        "uid-123",
        True,
    )
    assert rayjob["metadata"]["labels"]["speedrun.marin.community/job"] == job.name
    assert rayjob["spec"]["entrypoint"] == f"speedrun train --job default/{job.name} --ray"
    assert rayjob["spec"]["shutdownAfterJobFinishes"] is True
    assert build_rayjob(job, "uid-123", CONFIG) == rayjob, "the builder must be deterministic"


def test_a_gpu_run_lands_on_the_gke_pool_of_its_gpu_type() -> None:
    group = worker(rayjob_for("marin-hello-world-a100.yaml"))
    spec = group["template"]["spec"]
    assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    resources = container(group)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1" == resources["requests"]["nvidia.com/gpu"]
    assert (group["replicas"], group["numOfHosts"]) == (1, 1)


def test_eight_h100s_ask_for_eight_gpus_on_one_node() -> None:
    group = worker(rayjob_for("llama-150m-h100x8.yaml"))
    assert group["template"]["spec"]["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-h100-80gb"
    }
    assert container(group)["resources"]["limits"]["nvidia.com/gpu"] == "8"


def test_a_single_host_tpu_slice_is_one_host_with_all_its_chips() -> None:
    group = worker(rayjob_for("tpu-v4-8.yaml"))
    assert group["template"]["spec"]["nodeSelector"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v4-podslice",
        "cloud.google.com/gke-tpu-topology": "2x2x1",
    }
    assert (group["replicas"], group["numOfHosts"]) == (1, 1)
    assert container(group)["resources"]["limits"]["google.com/tpu"] == "4"
    assert {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"} in group["template"][
        "spec"
    ]["tolerations"]


def test_a_multi_host_slice_has_one_replica_per_slice_and_numOfHosts_hosts() -> None:
    group = worker(rayjob_for("tpu-v4-16-multihost.yaml", resources={"tpu": {"type": "v4-16", "slices": 2}}))
    assert (group["replicas"], group["minReplicas"], group["maxReplicas"], group["numOfHosts"]) == (
        2,
        2,
        2,
        2,
    )
    assert group["template"]["spec"]["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == "2x2x2"
    # GKE's TPU webhook refuses a cluster whose numOfHosts is not chips in the topology / chips per pod.
    assert int(container(group)["resources"]["limits"]["google.com/tpu"]) * group["numOfHosts"] == 8


def test_secrets_reach_the_pods_only_by_reference() -> None:
    rayjob = rayjob_for(
        "tpu-v4-16-multihost.yaml",
        env=[{"name": "EXTRA", "valueFrom": {"secretKeyRef": {"name": "extra", "key": "v"}}}],
    )
    env = {var["name"]: var for var in container(worker(rayjob))["env"]}
    assert env["WANDB_API_KEY"] == {
        "name": "WANDB_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "api-key"}},
    }
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "hf-token", "key": "token"}}
    assert env["EXTRA"]["valueFrom"] == {"secretKeyRef": {"name": "extra", "key": "v"}}
    assert "api-key-value" not in json.dumps(rayjob)
    assert all("value" not in var for var in env.values() if var["name"] in {"WANDB_API_KEY", "HF_TOKEN"})


def test_job_knobs_pass_through_to_rayjob_and_pods() -> None:
    rayjob = rayjob_for(
        "marin-hello-world-a100.yaml",
        activeDeadlineSeconds=3600,
        backoffLimit=5,
        ttlSecondsAfterFinished=60,
        priorityClassName="research-low",
        serviceAccountName="speedrun-trainer",
        nodeSelector={"team": "nlp"},
        tolerations=[{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
        image="registry.example/trainer:1.2",
    )
    spec = rayjob["spec"]
    assert (spec["activeDeadlineSeconds"], spec["backoffLimit"], spec["ttlSecondsAfterFinished"]) == (
        3600,
        5,
        60,
    )
    for pod in (
        spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"],
        worker(rayjob)["template"]["spec"],
    ):
        assert pod["priorityClassName"] == "research-low"
        assert pod["serviceAccountName"] == "speedrun-trainer"
        assert pod["nodeSelector"]["team"] == "nlp"
        assert {"key": "spot", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        assert pod["containers"][0]["image"] == "registry.example/trainer:1.2"


def test_a_queued_run_is_created_suspended_for_kueue_to_admit() -> None:
    rayjob = rayjob_for("marin-hello-world-a100.yaml", queueName="research")
    assert rayjob["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "research"
    assert rayjob["spec"]["suspend"] is True
    assert rayjob_for("marin-hello-world-a100.yaml")["spec"]["suspend"] is False
    assert rayjob_for("marin-hello-world-a100.yaml", suspend=True)["spec"]["suspend"] is True


def test_a_queued_run_its_user_suspended_joins_its_queue_only_when_resumed() -> None:
    rayjob = rayjob_for("marin-hello-world-a100.yaml", queueName="research", suspend=True)
    assert "kueue.x-k8s.io/queue-name" not in rayjob["metadata"]["labels"]
    assert rayjob["spec"]["suspend"] is True


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_queued_meets_kueues_rules_for_rayjobs(path: Path) -> None:
    """Kueue 0.17's RayJob webhook refuses a queued RayJob that keeps its cluster, uses an existing one,
    autoscales, has over 7 worker groups or a worker group named head (pkg/controller/jobs/rayjob)."""
    spec = rayjob_for(path.name, queueName="research")["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and "clusterSelector" not in spec
    cluster = spec["rayClusterSpec"]
    assert not cluster.get("enableInTreeAutoscaling")
    groups = [group["groupName"] for group in cluster["workerGroupSpecs"]]
    assert 1 <= len(groups) <= 7 and "head" not in groups


def test_the_output_prefix_comes_from_the_spec_or_the_operator_default() -> None:
    default_env = {v["name"]: v.get("value") for v in container(worker(rayjob_for("tpu-v4-8.yaml")))["env"]}
    assert default_env["SPEEDRUN_OUTPUT"] == "gs://speedruns/runs"
    own = rayjob_for("tpu-v4-8.yaml", output="s3://mine/runs")
    assert {v["name"]: v.get("value") for v in container(worker(own))["env"]}[
        "SPEEDRUN_OUTPUT"
    ] == "s3://mine/runs"


@pytest.mark.parametrize(
    "name",
    ["hello", "a" * 43, "a" * 44, "a" * 253, "llama.300m.v4-16", "0-starts-with-digit"],
)
def test_rayjob_names_are_deterministic_short_dns_labels(name: str) -> None:
    result = rayjob_name(name)
    assert result == rayjob_name(name)
    assert len(result) <= RAYJOB_NAME_LIMIT
    assert result[0].isalpha() and result[-1].isalnum()
    assert set(result) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


def test_long_names_that_share_a_prefix_get_different_rayjobs() -> None:
    assert rayjob_name("x" * 60 + "-one") != rayjob_name("x" * 60 + "-two")


def test_worker_hosts_advertise_the_speedrun_worker_resource_as_kuberay_parses_it() -> None:
    params = worker(rayjob_for("marin-hello-world-a100.yaml"))["rayStartParams"]
    # KubeRay trims quotes and JSON-decodes this to add the container's GPUs/TPUs to the same map.
    assert json.loads(params["resources"].strip("'\"` ")) == {"speedrun-worker": 1}


RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.mark.parametrize("restricted", [False, True])
def test_every_pod_and_container_of_a_job_meets_the_restricted_profile(restricted: bool) -> None:
    rayjob = build_rayjob(example("marin-hello-world-a100.yaml"), "uid-123", CONFIG, restricted=restricted)
    cluster = rayjob["spec"]["rayClusterSpec"]
    templates = [cluster["headGroupSpec"]["template"], worker(rayjob)["template"]]
    if restricted:
        templates.append(rayjob["spec"]["submitterPodTemplate"])
    for template in templates:
        pod = template["spec"]
        assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        assert all(c["securityContext"] == RESTRICTED_CONTAINER for c in pod["containers"])
        assert template["metadata"]["labels"]["speedrun.marin.community/job"] == "hello-world-nano-a100"


def test_outside_restricted_namespaces_kuberays_sidecar_submits_so_a_lost_head_fails_the_attempt() -> None:
    assert rayjob_for("marin-hello-world-a100.yaml")["spec"]["submissionMode"] == "SidecarMode"
    restricted = build_rayjob(example("marin-hello-world-a100.yaml"), "uid-123", CONFIG, restricted=True)
    assert restricted["spec"]["submissionMode"] == "K8sJobMode"
