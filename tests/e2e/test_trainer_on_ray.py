"""`speedrun train --ray`, as a RayJob's driver runs it: training happens in a task on a worker host."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.ray_head import ray_head
from fixtures.trainer import JobFactory, read_run_info, write_job

pytestmark = pytest.mark.e2e

SPEEDRUN = str(Path(sys.executable).with_name("speedrun"))


@pytest.fixture
def ray_worker_host(tmp_path: Path) -> Iterator[str]:
    """A Ray head that advertises the one speedrun-worker resource a worker pod would; its address."""
    with ray_head(tmp_path) as address:
        yield address


def test_the_driver_trains_in_a_task_on_the_worker_host(
    ray_worker_host: str, tiny_job: JobFactory, tmp_path: Path
) -> None:
    job = tiny_job(name="on-ray", train={"steps": 10})
    path = write_job(job, tmp_path)
    env = {**os.environ, "RAY_ADDRESS": ray_worker_host}
    env.pop("SPEEDRUN_JOB_NAMESPACE", None)
    driver = subprocess.run(
        [SPEEDRUN, "train", str(path), "--ray", "--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert driver.returncode == 0, driver.stderr[-4000:]
    results = tmp_path / "out" / "on-ray" / "speedrun_results.json"
    assert f"results: {results}" in driver.stdout
    info = read_run_info(results)
    assert info["train_config"]["num_train_steps"] == 10 and info["training_time"] > 0
