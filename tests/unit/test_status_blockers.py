"""What keeps a Ray cluster from coming up, as KubeRay's RayCluster and the pods tell it."""

from __future__ import annotations

from typing import Any

import pytest

from speedrun_operator.status.blockers import Blocker, of_pod, of_raycluster, worst

pytestmark = pytest.mark.unit

REFUSAL = (
    'pods "srj-x-head-abc" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation '
    '!= false (container "ray-job-submitter" must set securityContext.allowPrivilegeEscalation=false)'
)


def test_a_pod_the_api_server_refused_is_quoted_from_the_rayclusters_condition() -> None:
    raycluster = {
        "status": {
            "conditions": [
                {"type": "HeadPodReady", "status": "False", "reason": "HeadPodNotFound"},
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "reason": "FailedCreateHeadPod",
                    "message": REFUSAL,
                },
            ]
        }
    }
    blocker = of_raycluster(raycluster)
    assert blocker == Blocker("PodsRefused", f"FailedCreateHeadPod: {REFUSAL}")
    assert of_raycluster({"status": {"conditions": [{"type": "ReplicaFailure", "status": "False"}]}}) is None


def pod(phase: str = "Pending", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "srj-x-head-abc"}, "status": {"phase": phase, **status}}


def pending_with(status: dict[str, Any]) -> dict[str, Any]:
    return pod("Pending", **status)


def test_a_pod_no_node_fits_is_unschedulable_with_the_schedulers_words() -> None:
    unschedulable = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/16 nodes are available: 16 node(s) didn't match Pod's node affinity/selector.",
    }
    assert of_pod(pod(conditions=[unschedulable])) == Blocker(
        "Unschedulable", f"pod srj-x-head-abc: {unschedulable['message']}"
    )


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"])
def test_an_image_that_cannot_be_pulled_names_the_image(reason: str) -> None:
    waiting = {"reason": reason, "message": "manifest unknown"}
    status = {"containerStatuses": [{"image": "registry/trainer:nope", "state": {"waiting": waiting}}]}
    blocker = of_pod(pending_with(status))
    assert blocker is not None and blocker.reason == "ImagePullBackOff"
    assert blocker.message == f"pod srj-x-head-abc: {reason} for registry/trainer:nope: manifest unknown"


def test_a_pod_that_is_starting_normally_blocks_nothing() -> None:
    creating = {"containerStatuses": [{"image": "i", "state": {"waiting": {"reason": "ContainerCreating"}}}]}
    assert of_pod(pending_with(creating)) is None
    assert of_pod(pod("Running")) is None


def test_the_most_actionable_blocker_is_shown_first() -> None:
    found = [Blocker("Unschedulable", "b"), Blocker("PodsRefused", "a"), Blocker("ImagePullBackOff", "c")]
    assert worst(found) == Blocker("PodsRefused", "a")
    assert worst([]) is None
