"""`speedrun train --ray`, as a RayJob's driver runs it: training happens in a task on a worker host."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.trainer import JobFactory, read_run_info, write_job
from harness import processes

pytestmark = pytest.mark.e2e

RAY = str(Path(sys.executable).with_name("ray"))
SPEEDRUN = str(Path(sys.executable).with_name("speedrun"))


@pytest.fixture
def ray_worker_host(tmp_path: Path) -> Iterator[str]:
    """A Ray head that advertises the one speedrun-worker resource a worker pod would; its address."""
    port, dashboard_agent, metrics = processes.free_ports(3)
    # Ray's socket paths must fit in 107 bytes: pytest's tmp_path is too deep for that.
    ray_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    log = (tmp_path / "ray.log").open("wb")
    head = subprocess.Popen(
        [
            RAY,
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--dashboard-agent-listen-port={dashboard_agent}",
            f"--metrics-export-port={metrics}",
            f"--temp-dir={ray_dir}",
            '--resources={"speedrun-worker": 1}',
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        start_new_session=True,
    )
    try:
        address = f"127.0.0.1:{port}"
        _wait_healthy(address, head)
        yield address
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, 9)
            head.wait()
        log.close()
        shutil.rmtree(ray_dir, ignore_errors=True)


def _wait_healthy(address: str, head: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert head.poll() is None, "the Ray head exited"
        check = subprocess.run([RAY, "health-check", "--address", address], capture_output=True, timeout=60)
        if check.returncode == 0:
            return
        time.sleep(1)
    raise TimeoutError(f"Ray head at {address} not healthy within {timeout} s")


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
