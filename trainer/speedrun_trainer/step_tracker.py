"""A Levanter tracker that captures each step's duration, loss and throughput, and each evaluation.

Levanter logs ``throughput/duration`` and friends for every step through its tracker; adding this tracker
next to W&B captures them without touching the training loop. The tracker only copies a few floats out of
each call (the values are already on the host: Levanter synced the loss to time the step) and hands them to
the run's ``StepSink``; everything slow happens elsewhere.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from levanter.tracker import Tracker, TrackerConfig

from speedrun_trainer.step_log import EvalRecord, StepRecord

DURATION = "throughput/duration"
LOSS = "train/loss"
TOKENS_PER_SECOND = "throughput/tokens_per_second"
EVAL_PREFIX = "eval/"


class StepSink(Protocol):
    def on_step(self, record: StepRecord) -> None: ...

    def on_eval(self, record: EvalRecord) -> None: ...

    def before_checkpoint(self, record: StepRecord) -> None:
        """The checkpointed step, before Levanter saves it: its records must be on storage first."""


_sinks: dict[str, StepSink] = {}
_sinks_lock = threading.Lock()


@contextmanager
def registered_sink(name: str, sink: StepSink) -> Iterator[None]:
    """Make ``sink`` reachable from trackers built from ``SpeedrunTrackerConfig(sink=name)``.

    Levanter builds trackers from their configs (more than once), and configs must stay plain data, so the
    config names the sink instead of holding it.
    """
    with _sinks_lock:
        _sinks[name] = sink
    try:
        yield
    finally:
        with _sinks_lock:
            del _sinks[name]


def sink_named(name: str) -> StepSink:
    with _sinks_lock:
        return _sinks[name]


class SpeedrunTracker(Tracker):  # type: ignore[misc]  # Levanter is untyped
    name: str = "speedrun"

    def __init__(self, sink: StepSink) -> None:
        self._sink = sink
        self._loss: dict[int, float] = {}
        """Levanter logs the loss and the duration of a step in separate calls; the loss comes first."""

    def log_hyperparameters(self, hparams: dict[str, Any]) -> None:
        pass

    def log(self, metrics: Mapping[str, Any], *, step: int | None, commit: bool | None = None) -> None:
        if step is None:
            return
        if LOSS in metrics:
            self._loss[step] = float(metrics[LOSS])
        if DURATION in metrics:
            tokens = metrics.get(TOKENS_PER_SECOND)
            self._sink.on_step(
                StepRecord(
                    step=step,
                    duration=float(metrics[DURATION]),
                    loss=self._loss.pop(step, None),
                    tokens_per_second=float(tokens) if tokens is not None else None,
                    finished_at=time.time(),
                )
            )
        evals = {
            key: float(value)
            for key, value in metrics.items()
            if key.startswith(EVAL_PREFIX) and _is_number(value)
        }
        if evals:
            self._sink.on_eval(EvalRecord(step=step, metrics=evals))

    def log_summary(self, metrics: dict[str, Any]) -> None:
        pass

    def log_artifact(self, artifact_path: Any, *, name: str | None = None, type: str | None = None) -> None:
        pass

    def finish(self) -> None:
        pass


@TrackerConfig.register_subclass("speedrun")
@dataclasses.dataclass(frozen=True)
class SpeedrunTrackerConfig(TrackerConfig):  # type: ignore[misc]
    sink: str = ""
    """The name a sink was registered under with ``registered_sink``."""

    def init(self, run_id: str | None) -> SpeedrunTracker:
        return SpeedrunTracker(sink_named(self.sink))


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
