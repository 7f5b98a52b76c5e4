"""The Argo CD health check maps every SpeedrunJob phase, including ones no status carries yet.

tests/cluster/test_gitops.py runs the same Lua against real objects from the operator; here every phase of the
API is covered, so a new phase fails this test until the Lua decides what it means.
"""

from __future__ import annotations

import pytest

from fixtures.argocd import health
from speedrun_operator.api import Phase

pytestmark = pytest.mark.unit

EXPECTED = {
    Phase.PENDING: "Progressing",
    Phase.PROVISIONING: "Progressing",
    Phase.QUEUED: "Progressing",
    Phase.RUNNING: "Progressing",
    Phase.SUSPENDED: "Suspended",
    Phase.SUCCEEDED: "Healthy",
    Phase.FAILED: "Degraded",
}


def job(status: dict[str, object] | None) -> dict[str, object]:
    body: dict[str, object] = {
        "apiVersion": "speedrun.marin.community/v1alpha1",
        "kind": "SpeedrunJob",
        "metadata": {"name": "x", "namespace": "runs"},
        "spec": {"author": {"name": "A"}},
    }
    if status is not None:
        body["status"] = status
    return body


def test_every_phase_of_the_api_has_a_health() -> None:
    assert set(EXPECTED) == set(Phase)
    assert {phase: health(job({"phase": phase.value}))["status"] for phase in Phase} == EXPECTED


def test_an_object_the_operator_has_not_seen_yet_is_progressing() -> None:
    assert health(job(None)) == {
        "status": "Progressing",
        "message": "Waiting for the speedrun operator to accept the SpeedrunJob",
    }
    assert health(job({}))["status"] == "Progressing"


def test_messages_carry_what_a_reviewer_needs() -> None:
    running = health(
        job({"phase": "Running", "progress": {"display": "40/100 (40%)"}, "message": "training"})
    )
    assert running == {"status": "Progressing", "message": "Running 40/100 (40%): training"}
    failed = health(job({"phase": "Failed", "reason": "InvalidSpec", "message": "spec.train.steps: too big"}))
    assert failed == {"status": "Degraded", "message": "Failed (InvalidSpec): spec.train.steps: too big"}
    results = {"evalBpb": 2.4647250175476074, "evalBpbDisplay": "2.4647"}
    succeeded = health(job({"phase": "Succeeded", "results": results}))
    assert succeeded == {"status": "Healthy", "message": "Succeeded: eval bpb 2.4647"}
    # Written by an operator from before evalBpbDisplay:
    older = health(job({"phase": "Succeeded", "results": {"evalBpb": 1.234}}))
    assert older == {"status": "Healthy", "message": "Succeeded: eval bpb 1.234"}


def test_a_phase_from_a_newer_operator_is_unknown_not_healthy() -> None:
    assert health(job({"phase": "Teleporting"}))["status"] == "Unknown"
