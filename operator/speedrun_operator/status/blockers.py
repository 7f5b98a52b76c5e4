"""What keeps a run's Ray cluster from coming up, read from KubeRay's RayCluster and the pods. Pure functions.

KubeRay's RayJob says only that the cluster is starting. The reason it does not start is elsewhere: a pod
the API server refused (Pod Security, a quota, a webhook) shows as the RayCluster's ``ReplicaFailure``
condition; a pod no node fits, or whose image cannot be pulled, shows in the pod's own status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Blocker:
    reason: str
    """CamelCase, e.g. PodsRefused, Unschedulable, ImagePullBackOff."""
    message: str


POD_REFUSED = "PodsRefused"
UNSCHEDULABLE = "Unschedulable"
IMAGE_NOT_PULLED = "ImagePullBackOff"
CONTAINER_NOT_CREATED = "ContainerNotCreated"
REASONS = frozenset({POD_REFUSED, UNSCHEDULABLE, IMAGE_NOT_PULLED, CONTAINER_NOT_CREATED})
"""Reasons a SpeedrunJob can be stuck for: each is announced with a Warning event."""

_IMAGE_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_CONTAINER_WAITING = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
_SEVERITY = [POD_REFUSED, IMAGE_NOT_PULLED, CONTAINER_NOT_CREATED, UNSCHEDULABLE]
"""Which blocker to show when there are several: the most certain to need a person first."""


def of_raycluster(raycluster: dict[str, Any]) -> Blocker | None:
    """A pod KubeRay could not create: the API server's refusal, word for word."""
    for condition in (raycluster.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            what = condition.get("reason") or "FailedCreatePod"
            return Blocker(POD_REFUSED, f"{what}: {condition.get('message') or 'no message'}")
    return None


def of_pod(pod: dict[str, Any]) -> Blocker | None:
    """A pod that exists and cannot start: no node fits it, its image cannot be pulled, its container
    cannot be created."""
    status = pod.get("status") or {}
    name = pod.get("metadata", {}).get("name", "a pod")
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        why = waiting.get("reason")
        if why in _IMAGE_WAITING:
            image = container.get("image", "")
            return Blocker(
                IMAGE_NOT_PULLED, f"pod {name}: {why} for {image}: {waiting.get('message', '')}".strip()
            )
        if why in _CONTAINER_WAITING:
            return Blocker(CONTAINER_NOT_CREATED, f"pod {name}: {why}: {waiting.get('message', '')}".strip())
    if status.get("phase") == "Pending":
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"
            ):
                return Blocker(UNSCHEDULABLE, f"pod {name}: {condition.get('message') or 'no node fits it'}")
    return None


def worst(blockers: list[Blocker]) -> Blocker | None:
    if not blockers:
        return None
    return min(blockers, key=lambda b: (_SEVERITY.index(b.reason), b.message))
