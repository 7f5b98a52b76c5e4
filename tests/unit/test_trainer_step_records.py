"""Step records: captured from Levanter's tracker calls, kept per attempt, merged counting each step once."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import jax.numpy as jnp
import pytest

from speedrun_trainer.checkpointing import RecordingCheckpointerConfig
from speedrun_trainer.step_log import EvalRecord, StepRecord, StepRecorder, read_history
from speedrun_trainer.step_tracker import SpeedrunTracker, registered_sink

pytestmark = pytest.mark.unit


class ListSink:
    def __init__(self) -> None:
        self.steps: list[StepRecord] = []
        self.evals: list[EvalRecord] = []

    def on_step(self, record: StepRecord) -> None:
        self.steps.append(record)

    def on_eval(self, record: EvalRecord) -> None:
        self.evals.append(record)

    def before_checkpoint(self, record: StepRecord) -> None:
        self.steps.append(record)


def test_the_tracker_turns_levanters_calls_for_a_step_into_one_record() -> None:
    sink = ListSink()
    tracker = SpeedrunTracker(sink)
    # Levanter's calls for step 3, in its order: step info, eval hook, throughput, step metrics.
    tracker.log({"train/loss": 4.5, "global_step": 3, "run_progress": 0.1}, step=3)
    tracker.log({"eval/loss": 4.4, "eval/bundled/kjv/bpb": 2.1, "eval/total_time": 0.2}, step=3)
    tracker.log(
        {"throughput/duration": 0.25, "throughput/tokens_per_second": 4096.0, "throughput/mfu": 1.0}, step=3
    )
    tracker.log({"throughput/hook_time": 0.01}, step=3)
    tracker.log({"throughput/loading_time": 0.001}, step=3)
    [record] = sink.steps
    assert (record.step, record.duration, record.loss, record.tokens_per_second) == (3, 0.25, 4.5, 4096.0)
    assert record.finished_at is not None and abs(record.finished_at - time.time()) < 60
    assert sink.evals == [EvalRecord(step=3, metrics={"eval/loss": 4.4, "eval/bundled/kjv/bpb": 2.1,
                                                      "eval/total_time": 0.2})]  # fmt: skip


def test_records_survive_in_chunks_and_read_back_in_order(tmp_path: Path) -> None:
    recorder = StepRecorder(str(tmp_path), "20260101T000000000000Z", flush_seconds=3600)
    recorder.add_step(StepRecord(0, 9.5, 7.4, 100.0))
    recorder.flush()
    recorder.add_step(StepRecord(1, 0.5, 6.0, 2000.0))
    recorder.add_eval(EvalRecord(1, {"eval/x/bpb": 3.0}))
    recorder.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "20260101T000000000000Z-000000.jsonl",
        "20260101T000000000000Z-000001.jsonl",
    ]
    history = read_history(str(tmp_path))
    assert history.training_time == 10.0
    assert history.final_eval("eval/x/bpb") == 3.0
    assert history.attempts == ["20260101T000000000000Z"]


def test_a_resumed_attempt_replaces_the_steps_it_repeats_and_the_total_counts_each_step_once(
    tmp_path: Path,
) -> None:
    first = StepRecorder(str(tmp_path), "20260101T000000000000Z")
    for step in range(8):  # killed after step 7; the checkpoint was at step 5
        first.add_step(StepRecord(step, 1.0))
    first.close()
    second = StepRecorder(str(tmp_path), "20260101T000500000000Z")
    for step in range(5, 10):
        second.add_step(StepRecord(step, 2.0))
    second.close()
    history = read_history(str(tmp_path))
    assert sorted(history.steps) == list(range(10))
    assert history.training_time == 5 * 1.0 + 5 * 2.0
    assert len(history.attempts) == 2


def test_no_records_yet_means_an_empty_history(tmp_path: Path) -> None:
    history = read_history(str(tmp_path / "missing"))
    assert (history.training_time, history.steps, history.attempts) == (0, {}, [])


def test_the_latest_eval_wins(tmp_path: Path) -> None:
    recorder = StepRecorder(str(tmp_path), "a")
    recorder.add_eval(EvalRecord(0, {"eval/x/bpb": 3.5}))
    recorder.add_eval(EvalRecord(99, {"eval/x/bpb": 1.9}))
    recorder.close()
    history = read_history(str(tmp_path))
    assert history.final_eval("eval/x/bpb") == 1.9
    assert history.final_eval("eval/paloma/c4_en/bpb") is None


def test_a_checkpoint_is_saved_only_after_its_step_went_to_the_sink(tmp_path: Path) -> None:
    files_when_recorded: list[list[Path]] = []

    class CheckingSink(ListSink):
        def before_checkpoint(self, record: StepRecord) -> None:
            files_when_recorded.append(sorted(tmp_path.rglob("*")))
            super().before_checkpoint(record)

    sink = CheckingSink()
    with registered_sink("attempt-1", sink):
        checkpointer = RecordingCheckpointerConfig(
            base_path=str(tmp_path), append_run_id_to_base_path=False, sink="attempt-1"
        ).create("run")
        info = SimpleNamespace(
            step=7, step_duration=0.25, loss=1.5, state=SimpleNamespace(saveable_state={"w": jnp.arange(3.0)})
        )
        checkpointer.save_checkpoint(info, "step-7")
        checkpointer.wait_until_finished()
    [record] = sink.steps
    assert (record.step, record.duration, record.loss) == (7, 0.25, 1.5)
    assert files_when_recorded == [[]]
    assert (tmp_path / "step-7" / "metadata.json").exists()
