"""What the trainer does with each step: the primary host records and reports it, the others only train."""

from __future__ import annotations

from pathlib import Path

import pytest

from speedrun_operator.api import Progress
from speedrun_trainer.progress import ProgressEstimator
from speedrun_trainer.runner import RunMonitor
from speedrun_trainer.step_log import EvalRecord, StepRecord, StepRecorder, read_history

pytestmark = pytest.mark.unit


class ListReporter:
    def __init__(self) -> None:
        self.reported: list[Progress] = []

    def report_progress(self, progress: Progress) -> None:
        self.reported.append(progress)

    def close(self) -> None:
        pass


def feed(monitor: RunMonitor) -> None:
    for step in range(3):
        monitor.on_step(StepRecord(step=step, duration=0.5, loss=4.0, tokens_per_second=100.0))
    monitor.on_eval(EvalRecord(step=2, metrics={"eval/bpb": 3.0}))
    monitor.before_checkpoint(StepRecord(step=3, duration=0.5, loss=3.9, tokens_per_second=None))


@pytest.mark.parametrize(("primary", "recorded"), [(True, [0, 1, 2, 3]), (False, [])])
def test_only_the_primary_host_records_steps_and_reports_progress(
    tmp_path: Path, primary: bool, recorded: list[int]
) -> None:
    steps = str(tmp_path / "steps")
    recorder = StepRecorder(steps, "attempt-1", flush_seconds=3600)
    reporter = ListReporter()
    monitor = RunMonitor(recorder, ProgressEstimator(10, 1.0e6, 1.0e12), [reporter], primary=lambda: primary)
    feed(monitor)
    recorder.close()
    history = read_history(steps)
    assert sorted(history.steps) == recorded
    assert bool(history.evals) is primary
    assert bool(reporter.reported) is primary
    # Every host estimates its own progress: the primary's is what gets reported.
    assert monitor.estimator.progress() is not None
