"""What the operator has seen of the cluster around its jobs, kept in memory from its watches so a pass
decides without reading: each job's latest RayJob, what blocks its Ray cluster, what Kueue's Workload says of
a queued one, and which namespaces enforce Pod Security's restricted profile."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from speedrun_operator.status.blockers import Blocker, worst
from speedrun_operator.status.queue import QueueState

JobKey = tuple[str, str]
"""(namespace, SpeedrunJob name)."""

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"


@dataclass
class ClusterView:
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rayjobs: dict[JobKey, dict[str, Any]] = field(default_factory=dict)
    _blockers: dict[JobKey, dict[str, Blocker]] = field(default_factory=dict)
    _restricted: set[str] = field(default_factory=set)
    _namespaces: set[str] = field(default_factory=set)
    _workloads: dict[tuple[str, str], QueueState] = field(default_factory=dict)
    """Kueue's Workloads, by (namespace, the RayJob they were made for)."""
    _jobs_of_rayjobs: dict[tuple[str, str], JobKey] = field(default_factory=dict)

    def saw_rayjob(self, job: JobKey, rayjob: dict[str, Any] | None) -> None:
        with self._lock:
            if rayjob is None:
                self._rayjobs.pop(job, None)
            else:
                self._rayjobs[job] = rayjob
                self._jobs_of_rayjobs[(job[0], rayjob["metadata"]["name"])] = job

    def job_of_rayjob(self, namespace: str, rayjob: str) -> JobKey | None:
        with self._lock:
            return self._jobs_of_rayjobs.get((namespace, rayjob))

    def saw_workload(self, namespace: str, rayjob: str, state: QueueState | None) -> bool:
        """Note what Kueue's Workload for ``rayjob`` says; True when that changed."""
        with self._lock:
            key = (namespace, rayjob)
            before = self._workloads.get(key)
            if state is None:
                self._workloads.pop(key, None)
            else:
                self._workloads[key] = state
            return before != state

    def workload(self, namespace: str, rayjob: str) -> QueueState | None:
        with self._lock:
            return self._workloads.get((namespace, rayjob))

    def rayjob(self, job: JobKey) -> dict[str, Any] | None:
        with self._lock:
            return self._rayjobs.get(job)

    def saw_blocker(self, job: JobKey, source: str, blocker: Blocker | None) -> bool:
        """Note what ``source`` (a RayCluster or a pod) says blocks the job; True when the job's worst blocker
        changed, so the job is to be decided again."""
        with self._lock:
            before = worst(list(self._blockers.get(job, {}).values()))
            seen = self._blockers.setdefault(job, {})
            if blocker is None:
                seen.pop(source, None)
            else:
                seen[source] = blocker
            if not seen:
                del self._blockers[job]
            return worst(list(seen.values())) != before

    def blocker(self, job: JobKey) -> Blocker | None:
        with self._lock:
            return worst(list(self._blockers.get(job, {}).values()))

    def saw_namespace(self, name: str, labels: dict[str, str] | None) -> None:
        with self._lock:
            if labels is None:
                self._namespaces.discard(name)
            else:
                self._namespaces.add(name)
            if labels is not None and labels.get(ENFORCE_LABEL) == "restricted":
                self._restricted.add(name)
            else:
                self._restricted.discard(name)

    def restricted(self, namespace: str) -> bool | None:
        """Whether the namespace enforces restricted; None when its watch event has not arrived yet (a
        namespace made a moment before its first job)."""
        with self._lock:
            return namespace in self._restricted if namespace in self._namespaces else None

    def forget(self, job: JobKey) -> None:
        with self._lock:
            rayjob = self._rayjobs.pop(job, None)
            self._blockers.pop(job, None)
            if rayjob is not None:
                key = (job[0], rayjob["metadata"]["name"])
                self._jobs_of_rayjobs.pop(key, None)
                self._workloads.pop(key, None)
