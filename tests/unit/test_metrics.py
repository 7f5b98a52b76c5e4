"""Per-job gauges follow the job's status, and go away with the job."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from speedrun_operator import metrics
from speedrun_operator.api import Progress

pytestmark = pytest.mark.unit


def sample(name: str, **labels: str) -> float | None:
    value: float | None = REGISTRY.get_sample_value(name, labels)
    return value


def test_a_running_jobs_progress_throughput_and_mfu_are_exported_then_removed() -> None:
    progress = Progress(
        step=25,
        total_steps=100,
        display="25/100 (25%)",
        tokens_per_second=5000.0,
        mfu=40.0,
        updated_at="2026-11-25T12:00:00Z",
    )
    metrics.observe_job("ns", "run", "Running", progress)
    assert sample("speedrun_job_progress_ratio", namespace="ns", job="run") == 0.25
    assert sample("speedrun_job_tokens_per_second", namespace="ns", job="run") == 5000.0
    assert sample("speedrun_job_mfu_ratio", namespace="ns", job="run") == 0.4
    assert sample("speedrun_jobs", phase="Running") == 1

    metrics.observe_job("ns", "run", None, None)
    assert sample("speedrun_job_progress_ratio", namespace="ns", job="run") is None
    assert sample("speedrun_jobs", phase="Running") == 0


def test_transitions_out_of_every_phase_are_exposed_from_zero_before_the_first_one() -> None:
    # Exposed once the module is imported, whether or not a job has moved since.
    for old in ("Pending", "Queued", "Provisioning", "Running", "Suspended"):
        for new in ("Succeeded", "Failed"):
            value = sample("speedrun_phase_transitions_total", from_phase=old, to_phase=new)
            assert value is not None, f"{old} -> {new} is not exposed before it happens"
    assert sample("speedrun_phase_transitions_total", from_phase="Failed", to_phase="Running") is None
