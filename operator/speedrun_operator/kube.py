"""The operator's ``reconcile.Cluster`` and ``reconcile_ladder.LadderCluster`` over the Kubernetes API; each
failed call is counted in the API-error metric."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from speedrun_operator import metrics, storage
from speedrun_operator.api import GROUP, PLURAL, VERSION
from speedrun_operator.api.ladder import LADDER_PLURAL
from speedrun_operator.kube_client import MERGE_PATCH, ApiError, KubeApi, custom_path
from speedrun_operator.reconcile import AlreadyExists

FIELD_MANAGER = "speedrun-operator"
"""How managedFields name the operator's writes (see kube_client)."""

EventSink = Callable[[dict[str, Any], str, str, str], None]
"""(SpeedrunJob body, event type Normal|Warning, reason, message) -> posts a Kubernetes Event."""


@dataclass(frozen=True)
class Kind:
    """A namespaced custom resource, and the calls the operator makes on it."""

    group: str
    version: str
    plural: str

    def get(self, api: KubeApi, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = _counted("get", self.plural, api, "GET", self._path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def create(self, api: KubeApi, body: dict[str, Any]) -> None:
        """Raises AlreadyExists when an object of that name exists."""
        namespace = body["metadata"]["namespace"]
        try:
            _counted("create", self.plural, api, "POST", self._path(namespace), body)
        except ApiError as exc:
            if exc.status == 409:
                raise AlreadyExists(f"{namespace}/{body['metadata']['name']}") from None
            raise

    def patch(self, api: KubeApi, namespace: str, name: str, patch: dict[str, Any]) -> None:
        _counted("patch", self.plural, api, "PATCH", self._path(namespace, name), patch, MERGE_PATCH)

    def patch_status(self, api: KubeApi, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource; returns the object as stored now."""
        path = self._path(namespace, name, "status")
        stored: dict[str, Any] = _counted(
            "patch", f"{self.plural}/status", api, "PATCH", path, {"status": status}, MERGE_PATCH
        )
        return stored

    def delete(self, api: KubeApi, namespace: str, name: str) -> None:
        """Gone already counts as deleted."""
        try:
            _counted("delete", self.plural, api, "DELETE", self._path(namespace, name))
        except ApiError as exc:
            if exc.status != 404:
                raise

    def _path(self, namespace: str, name: str = "", subresource: str = "") -> str:
        return custom_path(self.group, self.version, namespace, self.plural, name, subresource)


RAYJOB = Kind("ray.io", "v1", "rayjobs")
WORKLOAD = Kind("kueue.x-k8s.io", "v1beta2", "workloads")
SPEEDRUNJOB = Kind(GROUP, VERSION, PLURAL)
SPEEDRUNLADDER = Kind(GROUP, VERSION, LADDER_PLURAL)


class KubeCluster:
    def __init__(self, events: EventSink, *, connections: int) -> None:
        """``connections``: the connection pool's size; at least the handler threads, or handlers wait
        for connections and each one over the pool pays a new TLS handshake."""
        self._api = KubeApi(FIELD_MANAGER, pool_size=connections)
        self._events = events

    def get_rayjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return RAYJOB.get(self._api, namespace, name)

    def create_rayjob(self, body: dict[str, Any]) -> None:
        RAYJOB.create(self._api, body)

    def patch_rayjob(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        RAYJOB.patch(self._api, namespace, name, patch)

    def delete_rayjob(self, namespace: str, name: str) -> None:
        RAYJOB.delete(self._api, namespace, name)

    def patch_workload(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        WORKLOAD.patch(self._api, namespace, name, patch)

    def get_speedrunjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return SPEEDRUNJOB.get(self._api, namespace, name)

    def create_speedrunjob(self, body: dict[str, Any]) -> None:
        SPEEDRUNJOB.create(self._api, body)

    def patch_speedrunjob(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        SPEEDRUNJOB.patch(self._api, namespace, name, patch)

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return SPEEDRUNJOB.patch_status(self._api, namespace, name, status)

    def patch_ladder_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return SPEEDRUNLADDER.patch_status(self._api, namespace, name, status)

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        found = _counted("get", "namespaces", self._api, "GET", f"/api/v1/namespaces/{namespace}")
        return dict(found["metadata"].get("labels") or {})

    def post_event(self, job: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self._events(job, type_, reason, message)

    def read_text(self, url: str) -> str:
        return storage.read_text(url)


def get_speedrunjob(api: KubeApi, namespace: str, name: str) -> dict[str, Any] | None:
    return SPEEDRUNJOB.get(api, namespace, name)


def _counted(
    verb: str,
    resource: str,
    api: KubeApi,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> Any:
    try:
        return api.request(method, path, body, content_type=content_type)
    except ApiError as exc:
        metrics.API_ERRORS.labels(verb=verb, resource=resource, code=str(exc.status)).inc()
        raise
