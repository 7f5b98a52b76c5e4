"""What Kueue says about a queued run, read from its Workload (kueue.x-k8s.io/v1beta2). Pure functions.

Kueue makes one Workload per RayJob it manages and owns the RayJob's ``suspend``: it unsuspends the RayJob
when the Workload is admitted, and suspends it again when the Workload is evicted (preempted by a
higher-priority workload, or deactivated). The RayJob itself only shows suspended or not; why, and what Kueue
is waiting for, is in the Workload's conditions and its admission.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

QUOTA_RESERVED = "QuotaReserved"
ADMITTED = "Admitted"
EVICTED = "Evicted"
PREEMPTED = "Preempted"
REQUEUED = "Requeued"
EVICTED_BY_PREEMPTION = "Preempted"
"""The Evicted (and Requeued) condition's reason when a higher-priority workload took the quota."""


@dataclass(frozen=True)
class QueueState:
    """One Workload, as far as a SpeedrunJob's status tells it."""

    name: str
    admitted: bool = False
    admitted_at: str | None = None
    cluster_queue: str | None = None
    flavors: dict[str, str] = field(default_factory=dict)
    """Pod set name -> the flavors Kueue assigned it (``a100``; ``cpu, a100`` when resources differ)."""
    reason: str = ""
    """Kueue's reason for not admitting it (QuotaReserved or Admitted False), or for evicting it."""
    message: str = ""
    preempted: bool = False
    """Evicted to make room for a higher-priority workload, and not admitted again yet."""
    active: bool = True
    """False when the Workload is deactivated (``spec.active: false``): Kueue keeps the RayJob suspended."""


def of_workload(workload: dict[str, Any]) -> QueueState:
    conditions = {c.get("type"): c for c in (workload.get("status") or {}).get("conditions") or []}

    def true(type_: str) -> dict[str, Any] | None:
        found = conditions.get(type_)
        return found if found is not None and found.get("status") == "True" else None

    name = workload.get("metadata", {}).get("name", "")
    active = (workload.get("spec") or {}).get("active", True) is not False
    admitted = true(ADMITTED)
    admission = (workload.get("status") or {}).get("admission") or {}
    evicted = true(EVICTED)
    requeued = conditions.get(REQUEUED) or {}
    preemption = evicted is not None and evicted.get("reason") == EVICTED_BY_PREEMPTION
    preemption = preemption or requeued.get("reason") == EVICTED_BY_PREEMPTION
    if admitted is not None and evicted is None:
        return QueueState(
            name,
            admitted=True,
            admitted_at=admitted.get("lastTransitionTime"),
            cluster_queue=admission.get("clusterQueue"),
            flavors=_flavors(admission),
            reason=admitted.get("reason") or "Admitted",
            message=admitted.get("message") or "",
            active=active,
        )
    waiting = evicted or conditions.get(ADMITTED) or conditions.get(QUOTA_RESERVED) or {}
    if preemption:
        said = true(PREEMPTED) or evicted or requeued
        waiting = {"reason": EVICTED_BY_PREEMPTION, "message": said.get("message", "")}
    return QueueState(
        name,
        reason=waiting.get("reason") or "Pending",
        message=waiting.get("message") or "Kueue has not considered the workload yet",
        preempted=preemption,
        active=active,
    )


def _flavors(admission: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for assignment in admission.get("podSetAssignments") or []:
        names = sorted(set((assignment.get("flavors") or {}).values()))
        if names:
            found[assignment.get("name", "")] = ", ".join(names)
    return found


def owner_rayjob(workload: dict[str, Any]) -> str | None:
    """The name of the RayJob the Workload was made for (its controller owner)."""
    for ref in workload.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == "RayJob" and ref.get("apiVersion", "").startswith("ray.io/"):
            name: str = ref.get("name", "")
            return name or None
    return None
