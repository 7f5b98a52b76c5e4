"""Every example is a SpeedrunJob that validates, and the set covers the hardware a newcomer asks about."""

from __future__ import annotations

from pathlib import Path

import pytest

from speedrun_operator.accelerators import tpu_slice
from speedrun_operator.api import SpeedrunJob
from speedrun_operator.manifests import load_job

pytestmark = pytest.mark.unit

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def jobs() -> list[SpeedrunJob]:
    return [load_job(path) for path in EXAMPLES]


def test_examples_cover_cpu_gpu_single_and_multi_host_tpu() -> None:
    resources = [job.spec.resources for job in jobs()]
    assert any(r.cpu is not None for r in resources)
    assert any(r.gpu is not None and r.gpu.type == "A100" for r in resources)
    assert any(r.gpu is not None and r.gpu.type == "H100" for r in resources)
    assert any(r.tpu is not None and r.tpu.type == "v4-8" for r in resources)
    assert any(r.tpu is not None and tpu_slice(r.tpu.type).hosts > 1 for r in resources)


def test_marin_hello_world_is_llama_nano_on_one_a100() -> None:
    job = load_job(Path(EXAMPLES[0]).parent / "marin-hello-world-a100.yaml")
    assert job.spec.model.preset == "llama_nano"
    assert job.spec.resources.gpu is not None and job.spec.resources.gpu.count == 1
    assert (job.spec.train.batch_size, job.spec.train.steps, job.spec.train.learning_rate) == (32, 100, 3e-3)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_manifest_round_trips(path: Path) -> None:
    job = load_job(path)
    again = SpeedrunJob.model_validate(job.manifest(), by_alias=True, by_name=False)
    assert again.spec == job.spec
