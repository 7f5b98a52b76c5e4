"""Turning step records into the SpeedrunJob's ``status.progress``: step, loss, throughput, MFU and ETA."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

from speedrun_operator.api import Progress
from speedrun_trainer.step_log import StepRecord

RECENT_STEPS = 20
"""Throughput and ETA average over this many recent steps; the first (compile) step is left out."""


class ProgressEstimator:
    def __init__(self, total_steps: int, model_flops_per_step: float, peak_flops: float) -> None:
        self._total = total_steps
        self._flops_per_step = model_flops_per_step
        self._peak = peak_flops
        self._recent: deque[StepRecord] = deque(maxlen=RECENT_STEPS)
        self._last: StepRecord | None = None

    def add(self, record: StepRecord) -> None:
        if self._last is not None:
            self._recent.append(record)
        self._last = record

    def progress(self) -> Progress | None:
        last = self._last
        if last is None:
            return None
        done = min(last.step + 1, self._total)
        recent = list(self._recent) or [last]
        seconds_per_step = sum(r.duration for r in recent) / len(recent)
        rates = [r.tokens_per_second for r in recent if r.tokens_per_second is not None]
        mfu = 100.0 * self._flops_per_step / (seconds_per_step * self._peak) if seconds_per_step > 0 else None
        return Progress(
            step=done,
            total_steps=self._total,
            display=f"{done}/{self._total} ({100.0 * done / self._total:.0f}%)",
            loss=last.loss,
            tokens_per_second=sum(rates) / len(rates) if rates else None,
            mfu=mfu,
            eta_seconds=(self._total - done) * seconds_per_step,
            updated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
