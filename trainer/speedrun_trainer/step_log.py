"""Per-step records of every attempt at a run, kept under ``<output>/<job>/steps/``.

Each attempt appends chunks ``<attempt>-<seq>.jsonl`` (a new object per flush, so object stores never see a
rewrite). A restarted attempt resumes from the latest checkpoint and repeats the steps after it; reading the
records back keeps, for each step, the latest attempt's record — the step that produced the final model —
so training_time counts each step once and sums over all attempts.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from speedrun_operator import contract, storage
from speedrun_trainer.periodic import PeriodicFlush

FLUSH_SECONDS = 5.0


@dataclass(frozen=True)
class StepRecord:
    step: int
    duration: float
    """Levanter's ``throughput/duration``: seconds of the train step itself."""
    loss: float | None = None
    tokens_per_second: float | None = None
    finished_at: float | None = None
    """Unix time the step's metrics reached the tracker (shows restarts and time to first step)."""


@dataclass(frozen=True)
class EvalRecord:
    step: int
    metrics: dict[str, float]
    """``eval/...`` metrics as Levanter logged them, e.g. ``eval/bundled/kjv/bpb``."""


@dataclass
class RunHistory:
    """The run's steps after merging all attempts."""

    steps: dict[int, StepRecord] = field(default_factory=dict)
    evals: dict[int, EvalRecord] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)

    @property
    def training_time(self) -> float:
        return sum(record.duration for record in self.steps.values())

    def final_eval(self, key: str) -> float | None:
        for step in sorted(self.evals, reverse=True):
            if key in self.evals[step].metrics:
                return self.evals[step].metrics[key]
        return None


def new_attempt_id() -> str:
    """Sorts in start order: a UTC timestamp to the microsecond."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


class StepRecorder:
    """Buffers this attempt's records; a background thread writes them out every ``flush_seconds`` (storage
    latency never lands on a training step) and ``close`` writes the rest."""

    def __init__(self, steps_url: str, attempt: str, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._steps_url = steps_url
        self._attempt = attempt
        self._pending: list[str] = []
        self._sequence = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        # Records kept in memory through a failed write are retried at the next; close() raises if storage
        # is still down.
        self._background = PeriodicFlush(
            self.flush, flush_seconds, f"step-recorder-{attempt}", f"step records to {steps_url}"
        )

    def add_step(self, record: StepRecord) -> None:
        self._add({"kind": "step", **asdict(record)})

    def add_eval(self, record: EvalRecord) -> None:
        self._add({"kind": "eval", **asdict(record)})

    def _add(self, entry: dict[str, object]) -> None:
        line = json.dumps(entry)
        with self._lock:
            self._pending.append(line)

    def flush(self) -> None:
        with self._write_lock:
            with self._lock:
                if not self._pending:
                    return
                lines, self._pending = self._pending, []
            name = f"{self._attempt}-{self._sequence:06d}.jsonl"
            try:
                storage.write_text_atomic(contract.join(self._steps_url, name), "\n".join(lines) + "\n")
            except Exception:
                with self._lock:
                    self._pending[:0] = lines
                raise
            self._sequence += 1

    def close(self) -> None:
        self._background.close()


def read_history(steps_url: str) -> RunHistory:
    history = RunHistory()
    for name in storage.list_names(steps_url):
        if not name.endswith(".jsonl"):
            continue
        attempt = name.rsplit("-", 1)[0]
        if attempt not in history.attempts:
            history.attempts.append(attempt)
        # Names sort by attempt, then chunk: later records of a step replace earlier ones.
        for line in storage.read_text(contract.join(steps_url, name)).splitlines():
            entry = json.loads(line)
            kind = entry.pop("kind")
            if kind == "step":
                step = StepRecord(**entry)
                history.steps[step.step] = step
            elif kind == "eval":
                evaluation = EvalRecord(**entry)
                history.evals[evaluation.step] = evaluation
    return history
