"""Prometheus metrics of the operator. Names follow Prometheus conventions (units as suffixes)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from speedrun_operator.api import Phase, Progress, Results
from speedrun_operator.api.ladder import LadderPhase, SpeedrunLadderStatus

TRANSITIONS = Counter(
    "speedrun_phase_transitions_total", "SpeedrunJob phase transitions.", ["from_phase", "to_phase"]
)
# Every transition out of a phase is exposed from zero: a counter series born at 1 shows Prometheus no
# increase, so the first failure (or first job leaving Provisioning) would escape the chart's alerts.
for _old in Phase:
    for _new in Phase:
        if not _old.terminal and _new != _old:
            TRANSITIONS.labels(from_phase=_old.value, to_phase=_new.value)
RECONCILE_SECONDS = Histogram(
    "speedrun_reconcile_duration_seconds", "Time spent in one operator handler.", ["handler"]
)
TIME_TO_RUNNING = Histogram(
    "speedrun_time_to_running_seconds",
    "From SpeedrunJob creation to its trainer running.",
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600),
)
ACCELERATOR_HOURS = Counter(
    "speedrun_accelerator_hours_total", "Chip-hours of finished runs, by accelerator type.", ["accelerator"]
)
API_ERRORS = Counter(
    "speedrun_kubernetes_api_errors_total", "Failed Kubernetes API calls.", ["verb", "resource", "code"]
)
_RESULT_LABELS = ["namespace", "job", "author", "accelerator"]
RESULT_BPB = Gauge("speedrun_result_eval_bpb", "Eval bits per byte of finished runs.", _RESULT_LABELS)
RESULT_TRAINING_SECONDS = Gauge(
    "speedrun_result_training_time_seconds", "Training time of finished runs.", _RESULT_LABELS
)
RESULT_HARDWARE_FLOPS = Gauge(
    "speedrun_result_hardware_flops", "Hardware FLOPs (time x chips x peak) of finished runs.", _RESULT_LABELS
)
RESULT_MFU = Gauge(
    "speedrun_result_mfu_ratio", "Model FLOPs utilisation of finished runs (0-1).", _RESULT_LABELS
)
_JOB_LABELS = ["namespace", "job"]
JOB_PROGRESS = Gauge("speedrun_job_progress_ratio", "Steps done / steps, of running jobs (0-1).", _JOB_LABELS)
JOB_THROUGHPUT = Gauge("speedrun_job_tokens_per_second", "Recent training throughput of jobs.", _JOB_LABELS)
JOB_MFU = Gauge("speedrun_job_mfu_ratio", "Recent model FLOPs utilisation of jobs (0-1).", _JOB_LABELS)


class PhaseCollector(Collector):
    """``speedrun_jobs{phase}``: how many SpeedrunJobs this operator sees in each phase right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phases: dict[tuple[str, str], str] = {}

    def observe(self, namespace: str, name: str, phase: str | None) -> None:
        with self._lock:
            if phase is None:
                self._phases.pop((namespace, name), None)
            else:
                self._phases[(namespace, name)] = phase

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("speedrun_jobs", "SpeedrunJobs by phase.", labels=["phase"])
        with self._lock:
            counts = {phase.value: 0 for phase in Phase}
            for phase in self._phases.values():
                counts[phase] = counts.get(phase, 0) + 1
        for phase, count in counts.items():
            family.add_metric([phase], count)
        yield family


PHASES = PhaseCollector()
REGISTRY.register(PHASES)


class LadderPhaseCollector(PhaseCollector):
    """``speedrun_ladders{phase}``: how many SpeedrunLadders this operator sees in each phase right now."""

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("speedrun_ladders", "SpeedrunLadders by phase.", labels=["phase"])
        with self._lock:
            counts = {phase.value: 0 for phase in LadderPhase}
            for phase in self._phases.values():
                counts[phase] = counts.get(phase, 0) + 1
        for phase, count in counts.items():
            family.add_metric([phase], count)
        yield family


LADDER_PHASES = LadderPhaseCollector()
REGISTRY.register(LADDER_PHASES)
_LADDER_LABELS = ["namespace", "ladder"]
LADDER_RUNGS_DONE = Gauge(
    "speedrun_ladder_rungs_done", "Rungs of a SpeedrunLadder with published results.", _LADDER_LABELS
)
LADDER_RUNGS = Gauge("speedrun_ladder_rungs", "Rungs of a SpeedrunLadder.", _LADDER_LABELS)
LADDER_PROJECTED_BPB = Gauge(
    "speedrun_ladder_projected_bpb",
    "A ladder's bpb projected at 1e22 FLOPs: the site's fit and our converged one.",
    [*_LADDER_LABELS, "fit"],
)
LADDER_RUNG_BPB = Gauge(
    "speedrun_ladder_rung_eval_bpb",
    "Eval bits per byte of a ladder's finished rungs.",
    [*_LADDER_LABELS, "rung"],
)


def observe_job(namespace: str, name: str, phase: str | None, progress: Progress | None) -> None:
    """Refresh one job's gauges from its status (phase None: the job is gone)."""
    PHASES.observe(namespace, name, phase)
    if phase is None or progress is None:
        for gauge in (JOB_PROGRESS, JOB_THROUGHPUT, JOB_MFU):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)
        return
    JOB_PROGRESS.labels(namespace, name).set(
        progress.step / progress.total_steps if progress.total_steps else 0
    )
    if progress.tokens_per_second is not None:
        JOB_THROUGHPUT.labels(namespace, name).set(progress.tokens_per_second)
    if progress.mfu is not None:
        JOB_MFU.labels(namespace, name).set(progress.mfu / 100.0)


def record_results(namespace: str, name: str, author: str, accelerator: str, results: Results) -> None:
    labels = {"namespace": namespace, "job": name, "author": author, "accelerator": accelerator}
    if results.eval_bpb is not None:
        RESULT_BPB.labels(**labels).set(results.eval_bpb)
    RESULT_TRAINING_SECONDS.labels(**labels).set(results.training_time)
    RESULT_HARDWARE_FLOPS.labels(**labels).set(results.training_hardware_flops)
    if results.mfu is not None:
        RESULT_MFU.labels(**labels).set(results.mfu / 100.0)


def observe_ladder(namespace: str, name: str, status: SpeedrunLadderStatus | None) -> None:
    """Refresh one ladder's gauges from its status (None: the ladder is gone)."""
    LADDER_PHASES.observe(namespace, name, None if status is None else status.phase.value)
    wanted: dict[tuple[Gauge, tuple[str, ...]], float] = {}
    if status is not None and status.rungs:
        wanted[(LADDER_RUNGS, (namespace, name))] = len(status.rungs)
        done = sum(1 for rung in status.rungs if rung.results_url)
        wanted[(LADDER_RUNGS_DONE, (namespace, name))] = done
        for rung in status.rungs:
            if rung.eval_bpb is not None:
                wanted[(LADDER_RUNG_BPB, (namespace, name, rung.name))] = rung.eval_bpb
        fit = status.fit
        for which, law in (
            ("site", fit.site if fit else None),
            ("converged", fit.converged if fit else None),
        ):
            if law is not None:
                wanted[(LADDER_PROJECTED_BPB, (namespace, name, which))] = law.projected_bpb
    with _LADDER_LOCK:
        for gauge, labels in _LADDER_SERIES.pop((namespace, name), set()) - set(wanted):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
        for (gauge, labels), value in wanted.items():
            gauge.labels(*labels).set(value)
        if wanted:
            _LADDER_SERIES[(namespace, name)] = set(wanted)


_LADDER_LOCK = threading.Lock()
_LADDER_SERIES: dict[tuple[str, str], set[tuple[Gauge, tuple[str, ...]]]] = {}
"""The gauge series set for each ladder, so those it no longer has are removed."""


def serve(port: int, address: str = "0.0.0.0") -> None:
    start_http_server(port, addr=address)
