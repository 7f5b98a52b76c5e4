"""The README's main command trains the hello-world for real, on this machine's CPU, in under 3 minutes."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.trainer import REPO, SpeedrunProcess, read_run_info
from speedrun_operator.manifests import load_job
from speedrun_operator.runinfo import compute_run_info
from speedrun_operator.runinfo.keys import RUN_INFO_KEYS
from speedrun_trainer.step_log import read_history

pytestmark = pytest.mark.e2e

HELLO = REPO / "examples" / "hello-world-cpu.yaml"
BUDGET_SECONDS = 180


def test_speedrun_run_trains_the_hello_world_and_leaves_a_marin_results_file(
    tmp_path: Path, speedrun_processes: Callable[..., SpeedrunProcess]
) -> None:
    shutil.copy(HELLO, tmp_path / "hello.yaml")
    started = time.monotonic()
    process = speedrun_processes(["run", "hello.yaml"], cwd=tmp_path, log=tmp_path / "speedrun.log")
    code = process.wait(timeout=BUDGET_SECONDS + 60)
    wall = time.monotonic() - started
    assert code == 0, process.output()[-4000:]

    job = load_job(HELLO)
    results = tmp_path / "speedrun-output" / job.name / "speedrun_results.json"
    assert f"results: {results}" in process.output()
    text = results.read_text()
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, sort_keys=True) + "\n"
    info = read_run_info(results)
    expected = compute_run_info(job.spec)

    # Marin's keys, one by one.
    assert set(info) >= RUN_INFO_KEYS
    assert info["author"] == {"name": "Your Name", "affiliation": "Your Lab", "url": None}
    assert info["description"] == job.spec.description
    assert info["model_config"]["hidden_dim"] == 64 and info["model_config"]["seq_len"] == 128
    assert info["model_config"]["activation_function"] == "silu"
    assert info["train_config"]["num_train_steps"] == job.spec.train.steps
    assert info["train_config"]["train_batch_size"] == job.spec.train.batch_size
    assert info["tokenized_dataset"] == "bundled:speedrun-operator-tiny-corpus"
    assert info["resources"] == {"cpu": {"hosts": 1}, "peak_flops_per_chip": 1.0e11}
    assert info["model_size"] == expected.parameters
    assert info["total_tokens"] == expected.total_tokens == 200 * 8 * 128
    assert info["model_flops"] == expected.model_flops
    assert info["model_flops_per_token"] == expected.flops_per_token
    assert (info["num_devices"], info["num_chips"], info["device_flops"]) == (1, 1, 1.0e11)
    history = read_history(str(results.parent / "steps"))
    assert info["training_time"] == pytest.approx(history.training_time)
    assert 0 < info["training_time"] < wall
    assert info["training_hardware_flops"] == pytest.approx(info["training_time"] * 1 * 1.0e11)
    assert info["eval/paloma/c4_en/bpb"] is None  # the bundled set is not Paloma's c4_en
    assert time.strptime(info["run_completion_timestamp"], "%Y-%m-%d %H:%M:%S UTC")
    assert info["wandb_run_link"] is None  # no API key: offline

    # What this project adds: the eval set used, its bpb, and that it learned.
    assert (info["eval_dataset"], info["steps_completed"], info["attempts"]) == ("bundled/kjv", 200, 1)
    assert info["vocab_size"] == 1024
    bpb = info["eval_bpb"]
    assert math.isfinite(bpb)
    # The warmup starts the learning rate at 0, so the evaluation after step 0 scores the untrained weights:
    # its loss matches the loss of step 0, computed on the same initial weights.
    untrained = history.evals[0].metrics
    assert untrained["eval/bundled/kjv/loss"] == pytest.approx(history.steps[0].loss, rel=0.02)
    assert bpb < untrained["eval/bundled/kjv/bpb"] - 1.0

    # A ready submission folder: the job beside its results, and the offline W&B run kept.
    assert load_job(results.parent / "speedrun_job.yaml").spec == job.spec
    assert list((results.parent / "wandb").glob("offline-run-*"))

    # Last, so a slow machine still shows whether everything else holds.
    assert wall < BUDGET_SECONDS, (
        f"hello-world took {wall:.0f} s (training itself {info['training_time']:.0f} s)"
    )
