"""How KubeRay's RayJob status becomes a SpeedrunJob's phase, conditions and events."""

from __future__ import annotations

from typing import Any

import pytest

from speedrun_operator.api import Condition, ConditionType, Phase, SpeedrunJobStatus
from speedrun_operator.status.accept import accept
from speedrun_operator.status.conditions import find as find_condition
from speedrun_operator.status.conditions import set_condition
from speedrun_operator.status.decision import Transition, transition
from speedrun_operator.status.observe import observed

pytestmark = pytest.mark.unit

NOW = "2026-11-25T12:00:00Z"


def find(conditions: list[Condition], type_: ConditionType) -> Condition:
    condition = find_condition(conditions, type_)
    assert condition is not None, f"no {type_} condition"
    return condition


SPEC = {
    "author": {"name": "a"},
    "description": "d",
    "model": {"preset": "llama_nano"},
    "resources": {"tpu": {"type": "v4-8"}},
}


def provisioning() -> SpeedrunJobStatus:
    return SpeedrunJobStatus(phase=Phase.PROVISIONING, ray_job_name="srj-x", observed_generation=1)


def rayjob(deployment: str, job: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "status": {
            "jobDeploymentStatus": deployment,
            "jobStatus": job,
            "rayClusterName": "srj-x-abc",
            **extra,
        }
    }


def observe(ray: dict[str, Any] | None, current: SpeedrunJobStatus | None = None, **flags: bool) -> Any:
    return observed(
        ray,
        current or provisioning(),
        suspended_by_user=flags.get("suspended", False),
        queued=flags.get("queued", False),
        now=NOW,
    )


def transition_of(ray: dict[str, Any] | None, current: SpeedrunJobStatus | None = None) -> Transition | None:
    before = current or provisioning()
    return transition(before, observe(ray, before).status)


@pytest.mark.parametrize(
    ("deployment", "job", "phase", "reason"),
    [
        ("", "", Phase.PROVISIONING, "ClusterStarting"),
        ("Initializing", "", Phase.PROVISIONING, "ClusterStarting"),
        ("Running", "PENDING", Phase.PROVISIONING, "Submitting"),
        ("Running", "RUNNING", Phase.RUNNING, "Training"),
        ("Retrying", "", Phase.PROVISIONING, "Retrying"),
        ("Complete", "SUCCEEDED", Phase.SUCCEEDED, "Succeeded"),
        ("Suspended", "", Phase.SUSPENDED, "Suspended"),
    ],
)
def test_rayjob_states_map_to_phases(deployment: str, job: str, phase: Phase, reason: str) -> None:
    observation = observe(rayjob(deployment, job))
    assert (observation.status.phase, observation.status.reason) == (phase, reason)


def test_running_sets_cluster_ready_and_running_conditions_and_the_cluster_name() -> None:
    status = observe(rayjob("Running", "RUNNING", dashboardURL="srj-x-head-svc:8265")).status
    assert find(status.conditions, ConditionType.CLUSTER_READY).status == "True"
    assert find(status.conditions, ConditionType.RUNNING).status == "True"
    assert status.ray_cluster_name == "srj-x-abc" and status.dashboard_url == "srj-x-head-svc:8265"


def test_a_failed_rayjob_carries_kuberays_reason_and_message() -> None:
    failed = rayjob("Failed", "FAILED", reason="DeadlineExceeded", message="ran past 3600 s")
    status = observe(failed).status
    assert (status.phase, status.reason, status.message) == (
        Phase.FAILED,
        "DeadlineExceeded",
        "ran past 3600 s",
    )
    assert find(status.conditions, ConditionType.FAILED).reason == "DeadlineExceeded"
    assert status.completion_time is not None
    moved = transition_of(failed)
    assert moved is not None and moved.warning


def test_success_asks_for_results_to_be_published() -> None:
    observation = observe(rayjob("Complete", "SUCCEEDED", endTime="2026-11-25T11:59:00Z"))
    assert observation.rayjob_succeeded
    assert observation.status.completion_time == "2026-11-25T11:59:00Z"
    assert find(observation.status.conditions, ConditionType.COMPLETE).status == "True"


def test_an_externally_deleted_rayjob_is_reported_not_recreated() -> None:
    status = observe(None).status
    assert (status.phase, status.reason) == (Phase.FAILED, "RayJobDeleted")
    assert "srj-x" in (status.message or "")


def test_terminal_phases_are_final() -> None:
    done = SpeedrunJobStatus(phase=Phase.SUCCEEDED, ray_job_name="srj-x")
    assert observe(rayjob("Running", "RUNNING"), done).status.phase == Phase.SUCCEEDED
    assert transition_of(None, done) is None


def test_a_queued_run_waits_for_admission_and_a_user_suspended_one_says_so() -> None:
    assert observe(rayjob("", ""), queued=True).status.phase == Phase.QUEUED
    assert observe(rayjob("Running", "RUNNING"), suspended=True).status.phase == Phase.SUSPENDED


def test_repeating_an_observation_changes_nothing() -> None:
    first = observe(rayjob("Running", "RUNNING")).status
    assert transition_of(rayjob("Running", "RUNNING"), first) is None
    assert observe(rayjob("Running", "RUNNING"), first).status == first


def test_condition_transition_time_moves_only_when_status_does() -> None:
    once = set_condition([], ConditionType.RUNNING, "True", "Training", "", now="t1", generation=1)
    same = set_condition(once, ConditionType.RUNNING, "True", "Training", "still", now="t2", generation=1)
    flipped = set_condition(same, ConditionType.RUNNING, "False", "Done", "", now="t3", generation=1)
    assert [c.last_transition_time for c in (once[0], same[0], flipped[0])] == ["t1", "t1", "t3"]


def test_an_invalid_spec_fails_for_good_naming_the_field() -> None:
    spec = {**SPEC, "train": {"batchSize": 30, "steps": 1, "learningRate": 0.1}}
    accepted, decision = accept(spec, SpeedrunJobStatus(), generation=3, now=NOW)
    status = decision.status
    assert accepted is None
    assert (status.phase, status.reason) == (Phase.FAILED, "InvalidSpec")
    assert "spec.train.batchSize" in (status.message or "")
    assert find(status.conditions, ConditionType.ACCEPTED).status == "False"


def test_acceptance_records_run_info_and_the_accelerator() -> None:
    spec = {**SPEC, "train": {"batchSize": 32, "steps": 100, "learningRate": 0.1}}
    accepted, decision = accept(spec, SpeedrunJobStatus(), generation=1, now=NOW)
    status = decision.status
    assert accepted is not None and status.run_info is not None
    assert status.accelerator == "v4-8" and status.run_info.num_chips == 4
    assert status.run_info.total_tokens == 32 * 512 * 100
    assert find(status.conditions, ConditionType.ACCEPTED).status == "True"


RESULTS = {
    "evalBpb": 1.2,
    "trainingTime": 1.0,
    "trainingHardwareFlops": 1.0,
    "modelFlops": 1.0,
    "totalTokens": 1,
    "resultsUrl": "gs://b/r/speedrun_results.json",
    "runCompletionTimestamp": "2026-11-26 00:00:00 UTC",
}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, True),
        ({"phase": "Provisioning"}, True),
        ({"phase": "Running"}, True),
        ({"phase": "Suspended"}, True),
        ({"phase": "Succeeded"}, True),  # its results are still to be published
        ({"phase": "Succeeded", "results": RESULTS}, False),
        ({"phase": "Failed"}, False),
    ],
)
def test_a_job_is_settled_once_failed_or_succeeded_with_its_results(
    status: dict[str, Any], expected: bool
) -> None:
    assert SpeedrunJobStatus.model_validate(status).settled is not expected
