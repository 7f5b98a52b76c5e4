"""status.progress from step records: what `kubectl get speedrunjobs` shows while a run trains."""

from __future__ import annotations

import pytest

from speedrun_trainer.progress import ProgressEstimator
from speedrun_trainer.step_log import StepRecord

pytestmark = pytest.mark.unit


def test_nothing_to_say_before_the_first_step() -> None:
    assert ProgressEstimator(100, 1e9, 1e11).progress() is None


def test_progress_counts_completed_steps_and_leaves_the_compile_step_out_of_rates() -> None:
    estimator = ProgressEstimator(total_steps=100, model_flops_per_step=1e9, peak_flops=1e11)
    estimator.add(StepRecord(0, duration=10.0, loss=7.0, tokens_per_second=50.0))
    for step in range(1, 25):
        estimator.add(StepRecord(step, duration=0.5, loss=5.0, tokens_per_second=1000.0))
    progress = estimator.progress()
    assert progress is not None
    assert (progress.step, progress.total_steps, progress.display) == (25, 100, "25/100 (25%)")
    assert progress.loss == 5.0
    assert progress.tokens_per_second == 1000.0
    assert progress.eta_seconds == pytest.approx(75 * 0.5)
    assert progress.mfu == pytest.approx(100 * 1e9 / (0.5 * 1e11))
    assert progress.updated_at.endswith("Z")
