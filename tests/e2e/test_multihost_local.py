"""`speedrun run` of a job on two CPU hosts runs both on this machine: two Ray tasks, two JAX processes joined
through JAX's distributed initialisation (gloo collectives), the batch split between them; one of them
records the steps and writes the one results file, which `speedrun validate` accepts once exported.

The tiny Llama (1 layer, 32 wide) for 6 steps: what it costs is two JAX start-ups and two compilations.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.trainer import JobFactory, SpeedrunProcess, read_run_info, step_durations, write_job
from speedrun_trainer.ray_dispatch import wait_for_every_host

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS = 1200
STEPS = 6


def test_speedrun_run_trains_two_cpu_hosts_as_one_slice_on_this_machine(
    tiny_job: JobFactory, tmp_path: Path, speedrun_processes: Callable[..., SpeedrunProcess]
) -> None:
    job = tiny_job(
        name="two-hosts",
        resources={"cpu": {"hosts": 2}},
        train={"steps": STEPS, "batchSize": 4, "stepsPerCheckpoint": 3},
    )
    output = tmp_path / "out"
    path = write_job(job, tmp_path)
    run = speedrun_processes(
        ["run", str(path), "--output", str(output)], cwd=tmp_path, log=tmp_path / "run.log"
    )
    assert run.wait(timeout=RUN_TIMEOUT_SECONDS) == 0, run.output()[-4000:]
    assert "on 2 CPU hosts" in run.output()

    assert sorted(p.relative_to(output).as_posix() for p in output.rglob("speedrun_results.json")) == [
        "two-hosts/speedrun_results.json"
    ]
    info = read_run_info(output / "two-hosts" / "speedrun_results.json")
    # One CPU device per process: two devices only if both processes joined one JAX runtime.
    assert (info["num_devices"], info["num_chips"]) == (2, 2)
    (records,) = step_durations(str(output / "two-hosts" / "steps")).values()  # one writer
    assert sorted(records) == list(range(STEPS))
    assert (info["steps_completed"], info["attempts"]) == (STEPS, 1)
    assert info["training_time"] == pytest.approx(sum(records.values()), rel=1e-9)
    assert info["total_tokens"] == STEPS * 4 * 64
    checkpoints = output / "checkpoints" / "two-hosts"
    assert (checkpoints / "step-3" / "metadata.json").exists(), "a checkpoint, both hosts' shards in it"

    exported = tmp_path / "submission"
    export = speedrun_processes(
        ["export", str(output / "two-hosts"), str(exported)], cwd=tmp_path, log=tmp_path / "export.log"
    )
    assert export.wait(timeout=300) == 0, export.output()[-4000:]
    validate = speedrun_processes(["validate", str(exported)], cwd=tmp_path, log=tmp_path / "validate.log")
    assert validate.wait(timeout=300) == 0, validate.output()[-4000:]


def test_the_first_host_to_fail_fails_the_slice_at_once_and_the_others_are_stopped() -> None:
    import ray

    ray.init(address="local", include_dashboard=False, num_cpus=2)
    try:

        @ray.remote(max_retries=0)
        def host(index: int) -> int:
            if index == 1:
                time.sleep(2)
                os._exit(1)  # the process dies, as it does with its pod
            time.sleep(600)  # as a host blocked in a collective with the lost one would
            return index

        refs = [host.remote(index) for index in range(2)]
        started = time.monotonic()
        with pytest.raises(ray.exceptions.WorkerCrashedError):
            wait_for_every_host(refs, "test/lost-host")
        assert time.monotonic() - started < 60, "the driver does not wait on the surviving host"
        with pytest.raises(ray.exceptions.TaskCancelledError):
            ray.get(refs[0], timeout=60)
    finally:
        ray.shutdown()
