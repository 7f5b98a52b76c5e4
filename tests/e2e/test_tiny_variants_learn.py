"""Every model family trains for real on this machine's CPU through `speedrun run`, and learns.

One tiny shape (1 layer, 32 wide, 64 tokens, 20 steps) per variant; the runs share one output folder so the
bundled corpus is tokenized once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures.trainer import JobFactory, SpeedrunProcess, read_run_info, write_job
from speedrun_operator.api.families import family_of_model_config
from speedrun_trainer.step_log import read_history

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS = 600
EVAL_KEY = "eval/bundled/kjv/loss"
MIN_EVAL_LOSS_DROP = 0.3
"""Nats. Twenty steps at 3e-3 take a tiny model's loss from about ln(1024) ≈ 6.9 down by more than this."""

VARIANTS: dict[str, dict[str, Any]] = {
    "llama-all-norm": {
        "model": {"hybridNorm": True, "useQkNorm": True, "inputEmbeddingNorm": True, "upcastAttn": True}
    },
    "qwen3": {"model": {"family": "qwen3"}},
    "olmo2": {"model": {"family": "olmo2"}},
    "mixtral": {
        "model": {"family": "mixtral", "nRoutedExperts": 4, "numExpertsPerTok": 2, "nSharedExperts": 1}
    },
}


@pytest.fixture(scope="module")
def shared_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("variants-output")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_tiny_variant_trains_with_speedrun_run_and_its_loss_falls(
    variant: str,
    tmp_path: Path,
    shared_output: Path,
    tiny_job: JobFactory,
    speedrun_processes: Callable[..., SpeedrunProcess],
) -> None:
    job = tiny_job(name=f"tiny-{variant}", **VARIANTS[variant])
    path = write_job(job, tmp_path)
    process = speedrun_processes(
        ["run", str(path), "--output", str(shared_output)], cwd=tmp_path, log=tmp_path / "speedrun.log"
    )
    assert process.wait(timeout=RUN_TIMEOUT_SECONDS) == 0, process.output()[-4000:]

    info = read_run_info(shared_output / job.name / "speedrun_results.json")
    assert family_of_model_config(info["model_config"]) == job.spec.model.family
    history = read_history(str(shared_output / job.name / "steps"))
    losses = [record.loss for _, record in sorted(history.steps.items()) if record.loss is not None]
    assert len(losses) == job.spec.train.steps
    assert sum(losses[-5:]) < sum(losses[:5]), losses
    first, last = min(history.evals), max(history.evals)
    untrained, trained = history.evals[first].metrics[EVAL_KEY], history.evals[last].metrics[EVAL_KEY]
    assert trained < untrained - MIN_EVAL_LOSS_DROP, (untrained, trained)
