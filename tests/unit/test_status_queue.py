"""A queued run (spec.queueName) under Kueue: what its Workload says becomes the SpeedrunJob's status, and
spec.suspend reaches Kueue without either undoing the other. Workloads here are shaped as Kueue 0.17 writes
them (kueue.x-k8s.io/v1beta2; the cluster test tests/cluster/test_kueue.py reads real ones)."""

from __future__ import annotations

from typing import Any

import pytest

from speedrun_operator.api import ConditionType, Phase, SpeedrunJobStatus
from speedrun_operator.builders.labels import KUEUE_QUEUE_LABEL
from speedrun_operator.status.conditions import find
from speedrun_operator.status.edits import suspend_patches
from speedrun_operator.status.observe import observed, ray_state
from speedrun_operator.status.queue import QueueState, of_workload, owner_rayjob

pytestmark = pytest.mark.unit

NOW = "2026-12-02T04:00:00Z"
PENDING_MESSAGE = (
    "couldn't assign flavors to pod set workers: insufficient unused quota for nvidia.com/gpu in flavor "
    "a100, 8 more needed"
)
PREEMPTED_MESSAGE = (
    "Preempted to accommodate a workload (UID: 1234, JobUID: 5678) due to prioritization in the ClusterQueue"
)


def condition(type_: str, status: str, reason: str, message: str = "", at: str = NOW) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": at}


def workload(
    *conditions: dict[str, Any], admission: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "rayjob-srj-a-1b2c3",
            "ownerReferences": [{"apiVersion": "ray.io/v1", "kind": "RayJob", "name": "srj-a", "uid": "u"}],
        },
        "spec": {"queueName": "team-a", **spec},
        "status": {"conditions": list(conditions), **({"admission": admission} if admission else {})},
    }


PENDING = workload(condition("QuotaReserved", "False", "Pending", PENDING_MESSAGE))
ADMISSION = {
    "clusterQueue": "gpus",
    "podSetAssignments": [
        {"name": "head", "flavors": {"cpu": "cpu", "memory": "cpu"}},
        {"name": "workers", "flavors": {"cpu": "a100", "memory": "a100", "nvidia.com/gpu": "a100"}},
    ],
}
ADMITTED = workload(
    condition("QuotaReserved", "True", "QuotaReserved", "Quota reserved in ClusterQueue gpus"),
    condition("Admitted", "True", "Admitted", "The workload is admitted", at="2026-12-02T03:59:00Z"),
    admission=ADMISSION,
)
# As Kueue leaves it once the preempted RayJob is suspended: quota released, requeued, evicted.
PREEMPTED = workload(
    condition("QuotaReserved", "False", "Pending", PREEMPTED_MESSAGE),
    condition("Admitted", "False", "NoReservation", "The workload has no reservation"),
    condition("Evicted", "True", "Preempted", PREEMPTED_MESSAGE),
    condition("Preempted", "True", "InClusterQueue", PREEMPTED_MESSAGE),
    condition("Requeued", "True", "Preempted", PREEMPTED_MESSAGE),
)
# Admitted again: Kueue resets Evicted and Preempted when it reserves quota anew; Requeued stays.
READMITTED = workload(
    condition("QuotaReserved", "True", "QuotaReserved", "Quota reserved in ClusterQueue gpus"),
    condition("Admitted", "True", "Admitted", "The workload is admitted", at="2026-12-02T04:10:00Z"),
    condition("Evicted", "False", "QuotaReserved", "Previously: " + PREEMPTED_MESSAGE),
    condition("Preempted", "False", "QuotaReserved", "Previously: " + PREEMPTED_MESSAGE),
    condition("Requeued", "True", "Preempted", PREEMPTED_MESSAGE),
    admission=ADMISSION,
)


def suspended_rayjob() -> dict[str, Any]:
    return {"spec": {"suspend": True}, "status": {"jobDeploymentStatus": "Suspended"}}


def rayjob(deployment: str, job: str = "") -> dict[str, Any]:
    return {"status": {"jobDeploymentStatus": deployment, "jobStatus": job, "rayClusterName": "srj-a-x"}}


def queued(ray: dict[str, Any], current: SpeedrunJobStatus, wl: dict[str, Any] | None) -> SpeedrunJobStatus:
    queue = of_workload(wl) if wl is not None else None
    return observed(ray, current, suspended_by_user=False, queued=True, now=NOW, queue=queue).status


def provisioning() -> SpeedrunJobStatus:
    return SpeedrunJobStatus(
        phase=Phase.PROVISIONING, reason="RayJobCreated", ray_job_name="srj-a", attempts=1
    )


def test_a_pending_workload_is_read_with_kueues_reason_and_message() -> None:
    state = of_workload(PENDING)
    assert (state.admitted, state.preempted, state.reason, state.message) == (
        False,
        False,
        "Pending",
        PENDING_MESSAGE,
    )
    assert owner_rayjob(PENDING) == "srj-a"


def test_an_admitted_workload_is_read_with_its_cluster_queue_flavors_and_time() -> None:
    state = of_workload(ADMITTED)
    assert state.admitted and state.cluster_queue == "gpus"
    assert state.flavors == {"head": "cpu", "workers": "a100"}
    assert state.admitted_at == "2026-12-02T03:59:00Z"


def test_a_preempted_workload_is_read_as_preempted_until_admitted_again() -> None:
    preempted = of_workload(PREEMPTED)
    assert preempted.preempted and not preempted.admitted
    assert (preempted.reason, preempted.message) == ("Preempted", PREEMPTED_MESSAGE)
    again = of_workload(READMITTED)
    assert again.admitted and not again.preempted and again.admitted_at == "2026-12-02T04:10:00Z"


def test_a_queued_run_waits_with_kueues_message_on_its_status() -> None:
    status = queued(suspended_rayjob(), provisioning(), PENDING)
    assert (status.phase, status.reason) == (Phase.QUEUED, "WaitingForAdmission")
    assert PENDING_MESSAGE in (status.message or "") and "Pending" in (status.message or "")
    admitted = find(status.conditions, ConditionType.ADMITTED)
    assert admitted is not None and (admitted.status, admitted.reason) == ("False", "Pending")
    assert admitted.message == PENDING_MESSAGE and status.admission is None


def test_a_queued_run_before_kueue_made_its_workload_still_says_it_waits_for_admission() -> None:
    status = queued(suspended_rayjob(), provisioning(), None)
    assert (status.phase, status.reason) == (Phase.QUEUED, "WaitingForAdmission")


def test_an_admitted_run_shows_where_and_when_it_was_admitted_while_its_cluster_starts() -> None:
    waiting = queued(suspended_rayjob(), provisioning(), PENDING)
    # Kueue unsuspended the RayJob: KubeRay reports New before it starts the cluster.
    status = queued(rayjob("New"), waiting, ADMITTED)
    assert (status.phase, status.reason) == (Phase.PROVISIONING, "ClusterStarting")
    assert status.admission is not None
    assert status.admission.cluster_queue == "gpus" and status.admission.flavors["workers"] == "a100"
    assert status.admission.admitted_at == "2026-12-02T03:59:00Z"
    assert status.admission.workload == "rayjob-srj-a-1b2c3"
    admitted = find(status.conditions, ConditionType.ADMITTED)
    assert admitted is not None and admitted.status == "True" and "a100" in admitted.message
    running = queued(rayjob("Running", "RUNNING"), status, ADMITTED)
    assert running.phase == Phase.RUNNING and running.admission == status.admission


def test_a_preempted_run_says_so_is_queued_again_and_counts_the_preemption_once() -> None:
    running = queued(rayjob("Running", "RUNNING"), provisioning(), ADMITTED)
    assert running.phase == Phase.RUNNING
    # Kueue suspended the RayJob; KubeRay tears the cluster down.
    preempted = queued(
        {**suspended_rayjob(), "status": {"jobDeploymentStatus": "Suspending"}}, running, PREEMPTED
    )
    assert (preempted.phase, preempted.reason) == (Phase.QUEUED, "Preempted")
    assert PREEMPTED_MESSAGE in (preempted.message or "") and "checkpoint" in (preempted.message or "")
    assert preempted.preemptions == 1 and preempted.admission is None
    running_condition = find(preempted.conditions, ConditionType.RUNNING)
    assert running_condition is not None and (running_condition.status, running_condition.reason) == (
        "False",
        "Preempted",
    )
    still = queued(suspended_rayjob(), preempted, PREEMPTED)
    assert still.reason == "Preempted" and still.preemptions == 1
    # Admitted again: its cluster starts anew; attempts are KubeRay's count, which a preemption leaves alone.
    back = queued(rayjob("Initializing"), still, READMITTED)
    assert back.phase == Phase.PROVISIONING and back.preemptions == 1 and back.attempts == 1
    assert back.admission is not None and back.admission.admitted_at == "2026-12-02T04:10:00Z"


def test_a_run_its_user_suspended_is_suspended_not_queued_whatever_kueue_says() -> None:
    status = observed(
        suspended_rayjob(),
        provisioning(),
        suspended_by_user=True,
        queued=True,
        now=NOW,
        queue=of_workload(PENDING),
    ).status
    assert (status.phase, status.reason) == (Phase.SUSPENDED, "Suspended")


def test_kueue_admitting_a_run_is_not_mistaken_for_a_new_unadmitted_one() -> None:
    assert ray_state("New", "", suspended_by_user=False, queued=True) == "Queued"
    assert ray_state("New", "", suspended_by_user=False, queued=True, admitted=True) == "ClusterStarting"


def test_a_run_without_a_queue_passes_suspend_and_resume_to_its_rayjob() -> None:
    assert suspend_patches(True, None, None).rayjob == {"spec": {"suspend": True}}
    assert suspend_patches(False, None, None).rayjob == {"spec": {"suspend": False}}


def test_a_queued_run_is_suspended_and_resumed_through_its_workload_never_by_unsuspending_the_rayjob() -> (
    None
):
    suspend = suspend_patches(True, "team-a", "rayjob-srj-a-1b2c3")
    assert suspend.workload == {"spec": {"active": False}} and suspend.rayjob is None
    resume = suspend_patches(False, "team-a", "rayjob-srj-a-1b2c3")
    assert resume.workload == {"spec": {"active": True}}
    assert resume.rayjob == {"metadata": {"labels": {KUEUE_QUEUE_LABEL: "team-a"}}}
    assert "suspend" not in (resume.rayjob or {}).get("spec", {})


def test_a_queued_run_without_a_workload_leaves_its_queue_while_suspended_and_joins_it_on_resume() -> None:
    suspend = suspend_patches(True, "team-a", None)
    assert suspend.workload is None
    assert suspend.rayjob == {"metadata": {"labels": {KUEUE_QUEUE_LABEL: None}}, "spec": {"suspend": True}}
    resume = suspend_patches(False, "team-a", None)
    assert resume.workload is None and resume.rayjob == {
        "metadata": {"labels": {KUEUE_QUEUE_LABEL: "team-a"}}
    }


def test_a_deactivated_workload_is_read_as_inactive() -> None:
    state = of_workload(
        workload(condition("Evicted", "True", "Deactivated", "The workload is deactivated"), active=False)
    )
    assert not state.active and not state.preempted and state.reason == "Deactivated"
    assert QueueState("w").active
