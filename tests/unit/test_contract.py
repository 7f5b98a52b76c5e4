"""The operator-trainer contract: one placement of the hardware, which the RayJob, the trainer's Ray tasks,
JAX's multi-host switch and the chip count all read; one output layout under the output prefix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from speedrun_operator import contract
from speedrun_operator.api import SpeedrunJob
from speedrun_operator.api.resources import ResourcesSpec
from speedrun_operator.builders import build_rayjob
from speedrun_operator.config import OperatorConfig

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("resources", "replicas", "hosts_per_replica", "chips_per_host", "kind"),
    [
        ({"gpu": {"type": "H100", "count": 8}}, 1, 1, 8, "gpu"),
        ({"tpu": {"type": "v4-8"}}, 1, 1, 4, "tpu"),
        ({"tpu": {"type": "v4-16"}}, 1, 2, 4, "tpu"),
        ({"tpu": {"type": "v5litepod-16", "slices": 2}}, 2, 4, 4, "tpu"),
        ({"cpu": {}, "peakFlopsPerChip": 1e11}, 1, 1, 1, "cpu"),
        ({"cpu": {"hosts": 2}, "peakFlopsPerChip": 1e11}, 1, 2, 1, "cpu"),
    ],
)
def test_the_placement_of_each_kind_of_hardware(
    resources: dict[str, Any], replicas: int, hosts_per_replica: int, chips_per_host: int, kind: str
) -> None:
    spec = ResourcesSpec.model_validate(resources)
    where = contract.placement(spec)
    assert (where.kind, where.replicas, where.hosts_per_replica, where.chips_per_host) == (
        kind,
        replicas,
        hosts_per_replica,
        chips_per_host,
    )
    assert spec.num_chips == where.chips == replicas * hosts_per_replica * chips_per_host
    assert where.multihost == (replicas * hosts_per_replica > 1)


def test_the_rayjob_and_the_trainers_ray_tasks_read_the_same_placement() -> None:
    job = SpeedrunJob.model_validate(
        {
            "apiVersion": "speedrun.marin.community/v1alpha1",
            "kind": "SpeedrunJob",
            "metadata": {"name": "slices", "namespace": "team-a"},
            "spec": {
                "author": {"name": "Ada"},
                "description": "two v4-16 slices",
                "model": {"preset": "llama_nano"},
                "train": {"batchSize": 64, "steps": 10, "learningRate": 0.01},
                "resources": {"tpu": {"type": "v4-16", "slices": 2}},
            },
        },
        by_alias=True,
        by_name=False,
    )
    where = contract.placement(job.spec.resources)
    group = build_rayjob(job, "uid", OperatorConfig(default_output="gs://b/r"))["spec"]["rayClusterSpec"][
        "workerGroupSpecs"
    ][0]
    assert group["replicas"] * group["numOfHosts"] == where.hosts == 4
    assert group["template"]["spec"]["nodeSelector"] == where.node_selector
    assert json.loads(group["rayStartParams"]["resources"].strip("'")) == {contract.WORKER_RESOURCE: 1}
    assert where.ray_resources_per_host == {contract.WORKER_RESOURCE: 1.0}
    assert where.describe() == "4 hosts x 4 google.com/tpu on tpu-v4-podslice 2x2x2 (ct4p-hightpu-4t)"


def test_cpu_hosts_stand_in_for_a_slice_one_worker_pod_and_one_told_coordinator_each() -> None:
    job = SpeedrunJob.model_validate(
        {
            "apiVersion": "speedrun.marin.community/v1alpha1",
            "kind": "SpeedrunJob",
            "metadata": {"name": "two-hosts", "namespace": "team-a"},
            "spec": {
                "author": {"name": "Ada"},
                "description": "two CPU hosts",
                "model": {"preset": "llama_nano"},
                "train": {"batchSize": 8, "steps": 10, "learningRate": 0.01},
                "resources": {"cpu": {"cores": 1, "hosts": 2}, "peakFlopsPerChip": 1e11},
            },
        },
        by_alias=True,
        by_name=False,
    )
    where = contract.placement(job.spec.resources)
    assert (where.hosts, where.chips, where.multihost, where.cpu_hosts) == (2, 2, True, True)
    assert job.spec.resources.describe() == "2xcpu"
    group = build_rayjob(job, "uid", OperatorConfig(default_output="gs://b/r"))["spec"]["rayClusterSpec"][
        "workerGroupSpecs"
    ][0]
    assert (group["groupName"], group["replicas"], group["numOfHosts"]) == ("cpu", 1, 2)
    assert group["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "1"
    squeezed = build_rayjob(job, "uid", OperatorConfig(default_output="gs://b/r", cpu_worker_request="750m"))
    resources = squeezed["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][
        0
    ]["resources"]
    assert (resources["requests"]["cpu"], resources["limits"]["cpu"]) == ("750m", "1")
    assert where.ray_resources_per_host == {contract.WORKER_RESOURCE: 1.0}
    one = contract.placement(ResourcesSpec.model_validate({"cpu": {}, "peakFlopsPerChip": 1e11}))
    tpu = contract.placement(ResourcesSpec.model_validate({"tpu": {"type": "v4-16"}}))
    assert not one.cpu_hosts and not tpu.cpu_hosts, "a TPU slice's hosts find their coordinator themselves"


def test_a_gpu_hosts_ray_task_holds_its_gpus() -> None:
    where = contract.placement(ResourcesSpec.model_validate({"gpu": {"type": "A100", "count": 2}}))
    assert where.ray_resources_per_host == {contract.WORKER_RESOURCE: 1.0, "GPU": 2.0}
    assert where.tolerations == [contract.GPU_TOLERATION]


def test_a_runs_files_live_under_its_folder_and_checkpoints_and_caches_beside_it() -> None:
    layout = contract.OutputLayout(output="gs://bucket/runs/", job="tiny")
    assert layout.results == "gs://bucket/runs/tiny/speedrun_results.json"
    assert layout.config == "gs://bucket/runs/tiny/speedrun_job.yaml"
    assert layout.steps == "gs://bucket/runs/tiny/steps"
    assert layout.checkpoints == "gs://bucket/runs/checkpoints/tiny"
    assert layout.caches == "gs://bucket/runs/caches"
