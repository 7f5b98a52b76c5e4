"""Preemption: killed after a checkpoint and started again, the run resumes and counts each step once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.trainer import JobFactory, SpeedrunProcess, read_run_info, step_durations, write_job

pytestmark = pytest.mark.e2e

STEPS = 600
CHECKPOINT_EVERY = 50


def wait_for(condition: Callable[[], bool], process: SpeedrunProcess, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.proc.poll() is None, f"trainer exited before {what}:\n{process.output()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s:\n{process.output()[-3000:]}"
        time.sleep(0.2)


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
def test_a_run_stopped_after_a_checkpoint_resumes_and_sums_both_attempts(
    tmp_path: Path, tiny_job: JobFactory, speedrun_processes: Callable[..., SpeedrunProcess], stop: str
) -> None:
    job = tiny_job(name="preempted", train={"steps": STEPS, "stepsPerCheckpoint": CHECKPOINT_EVERY})
    manifest = write_job(job, tmp_path)
    output = tmp_path / "out"
    args = ["train", str(manifest), "--output", str(output)]
    steps_dir = output / job.name / "steps"
    checkpoint = output / "checkpoints" / job.name / f"step-{CHECKPOINT_EVERY}" / "metadata.json"

    first = speedrun_processes(args, cwd=tmp_path, log=tmp_path / "attempt-1.log")
    wait_for(checkpoint.exists, first, 600, f"checkpoint at step {CHECKPOINT_EVERY}")
    if stop == "SIGKILL":
        # Nothing runs after SIGKILL, and it comes the moment the checkpoint is on storage: the records of
        # every step up to it must already be there.
        first.kill_group()
        assert first.proc.returncode == -9
    else:
        # A preemption's SIGTERM: the trainer writes out the records it holds as it exits.
        assert first.terminate() != 0
    assert not (output / job.name / "speedrun_results.json").exists()

    second = speedrun_processes(args, cwd=tmp_path, log=tmp_path / "attempt-2.log")
    assert second.wait(timeout=600) == 0, second.output()[-4000:]
    info = read_run_info(output / job.name / "speedrun_results.json")
    attempts = step_durations(str(steps_dir))
    assert len(attempts) == 2
    killed, resumed = (attempts[name] for name in sorted(attempts))
    resumed_from = min(resumed)
    # Levanter's checkpoint step-N holds the state after step N, so training resumes at step N + 1.
    assert resumed_from > CHECKPOINT_EVERY and (resumed_from - 1) % CHECKPOINT_EVERY == 0
    assert f"Resuming training from step {resumed_from}" in second.output()
    assert max(resumed) == STEPS - 1
    assert set(killed) >= set(range(resumed_from))
    expected = sum(d for step, d in killed.items() if step < resumed_from) + sum(resumed.values())
    assert (info["steps_completed"], info["attempts"]) == (STEPS, 2)
    assert info["training_time"] == pytest.approx(expected, rel=1e-12)
    assert info["training_hardware_flops"] == pytest.approx(expected * 1.0e11, rel=1e-12)
