"""Progress onto the SpeedrunJob's status subresource, from inside the run's pod.

Only ``status.progress`` is written (merge patches): the operator owns every other status field, results
included (it reads them from the results file once KubeRay reports the run succeeded). Patches go out from a
background thread at most every ``MIN_INTERVAL`` seconds; a failed patch is logged and dropped, never raised
into training.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from speedrun_operator.api import GROUP, PLURAL, VERSION, Progress
from speedrun_operator.contract import JOB_NAME_ENV, JOB_NAMESPACE_ENV
from speedrun_operator.kube_client import MERGE_PATCH, KubeApi, custom_path

logger = logging.getLogger(__name__)

MIN_INTERVAL = 5.0


@dataclass(frozen=True)
class JobRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @staticmethod
    def from_env() -> JobRef | None:
        namespace, name = os.environ.get(JOB_NAMESPACE_ENV), os.environ.get(JOB_NAME_ENV)
        return JobRef(namespace, name) if namespace and name else None


FIELD_MANAGER = "speedrun-trainer"
"""How the API server's managedFields name the trainer's status writes (after the user agent)."""


def kube_api() -> KubeApi:
    """The pod's service account when in a cluster, else KUBECONFIG (or ~/.kube/config)."""
    return KubeApi(FIELD_MANAGER)


class StatusReporter:
    def __init__(self, job: JobRef, api: KubeApi, min_interval: float = MIN_INTERVAL) -> None:
        self._job = job
        self._api = api
        self._min_interval = min_interval
        self._latest: Progress | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"status-{job.name}", daemon=True)
        self._thread.start()

    @property
    def job(self) -> JobRef:
        return self._job

    def report_progress(self, progress: Progress) -> None:
        with self._lock:
            self._latest = progress
        self._wake.set()

    def finish(self, progress: Progress | None) -> bool:
        """Send the final progress now and stop; True when the API server took it (or there was none)."""
        self.close()
        if progress is None:
            return True
        return self._patch({"progress": progress.model_dump(mode="json", exclude_none=True)})

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                progress, self._latest = self._latest, None
            if progress is not None:
                self._patch({"progress": progress.model_dump(mode="json", exclude_none=True)})
            self._stop.wait(self._min_interval)

    def _patch(self, status: dict[str, Any]) -> bool:
        try:
            path = custom_path(GROUP, VERSION, self._job.namespace, PLURAL, self._job.name, "status")
            self._api.request("PATCH", path, {"status": status}, content_type=MERGE_PATCH)
        except Exception as exc:
            logger.warning("[%s] could not patch status (%s); training goes on", self._job, _short(exc))
            return False
        return True


def _short(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    return f"HTTP {status} {reason}" if status is not None else f"{type(exc).__name__}: {exc}"
