"""A status patch that fails is logged and dropped: it never reaches training."""

from __future__ import annotations

import logging
import socket

import pytest

from speedrun_operator.api import Progress
from speedrun_operator.kube_client import Credentials, KubeApi
from speedrun_trainer.status_reporter import JobRef, StatusReporter

pytestmark = pytest.mark.unit


def unreachable_api() -> KubeApi:
    """A real client aimed at a loopback port nothing listens on: every call fails as an outage would."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return KubeApi("test", retries=0, credentials=lambda: Credentials(server=f"http://127.0.0.1:{port}"))


PROGRESS = Progress(step=1, total_steps=2, display="1/2 (50%)", updated_at="2026-11-25T21:00:00Z")


def test_failed_patches_are_logged_naming_the_job_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    reporter = StatusReporter(JobRef("team-a", "run-1"), unreachable_api(), min_interval=0.01)
    with caplog.at_level(logging.WARNING):
        reporter.report_progress(PROGRESS)
        assert reporter.finish(PROGRESS) is False
    assert "[team-a/run-1] could not patch status" in caplog.text


def test_the_job_reference_comes_from_the_environment_the_operator_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SPEEDRUN_JOB_NAMESPACE", raising=False)
    monkeypatch.delenv("SPEEDRUN_JOB_NAME", raising=False)
    assert JobRef.from_env() is None
    monkeypatch.setenv("SPEEDRUN_JOB_NAMESPACE", "team-a")
    monkeypatch.setenv("SPEEDRUN_JOB_NAME", "run-1")
    assert JobRef.from_env() == JobRef("team-a", "run-1")
