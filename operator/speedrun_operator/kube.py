"""The operator's ``reconcile.Cluster`` and ``reconcile_ladder.LadderCluster`` over the Kubernetes API; each
failed call is counted in the API-error metric."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from speedrun_operator import kube_client, metrics, storage
from speedrun_operator.api import GROUP, PLURAL, VERSION
from speedrun_operator.api.ladder import LADDER_PLURAL
from speedrun_operator.reconcile import AlreadyExists

RAY_GROUP, RAY_VERSION, RAYJOBS = "ray.io", "v1", "rayjobs"

FIELD_MANAGER = "speedrun-operator"
"""How managedFields name the operator's writes (see kube_client)."""

EventSink = Callable[[dict[str, Any], str, str, str], None]
"""(SpeedrunJob body, event type Normal|Warning, reason, message) -> posts a Kubernetes Event."""


class KubeCluster:
    def __init__(self, events: EventSink, *, connections: int) -> None:
        """``connections``: the connection pool's size; at least the handler threads, or handlers wait
        for connections and each one over the pool pays a new TLS handshake."""
        self._api: client.CustomObjectsApi = kube_client.custom_objects_api(
            FIELD_MANAGER, pool_size=connections
        )
        self._core = client.CoreV1Api(self._api.api_client)
        self._events = events

    def get_rayjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = _counted(
                "get",
                RAYJOBS,
                self._api.get_namespaced_custom_object,
                RAY_GROUP,
                RAY_VERSION,
                namespace,
                RAYJOBS,
                name,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def create_rayjob(self, body: dict[str, Any]) -> None:
        namespace = body["metadata"]["namespace"]
        try:
            _counted(
                "create",
                RAYJOBS,
                self._api.create_namespaced_custom_object,
                RAY_GROUP,
                RAY_VERSION,
                namespace,
                RAYJOBS,
                body,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise AlreadyExists(f"{namespace}/{body['metadata']['name']}") from None
            raise

    def patch_rayjob(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        _counted(
            "patch",
            RAYJOBS,
            self._api.patch_namespaced_custom_object,
            RAY_GROUP,
            RAY_VERSION,
            namespace,
            RAYJOBS,
            name,
            patch,
        )

    def delete_rayjob(self, namespace: str, name: str) -> None:
        try:
            _counted(
                "delete",
                RAYJOBS,
                self._api.delete_namespaced_custom_object,
                RAY_GROUP,
                RAY_VERSION,
                namespace,
                RAYJOBS,
                name,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def get_speedrunjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return get_speedrunjob(self._api, namespace, name)

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        found = _counted("get", "namespaces", self._core.read_namespace, namespace)
        return dict(found.metadata.labels or {})

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        stored: dict[str, Any] = _counted(
            "patch",
            f"{PLURAL}/status",
            self._api.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": status},
        )
        return stored

    def create_speedrunjob(self, body: dict[str, Any]) -> None:
        namespace = body["metadata"]["namespace"]
        try:
            _counted(
                "create",
                PLURAL,
                self._api.create_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                body,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise AlreadyExists(f"{namespace}/{body['metadata']['name']}") from None
            raise

    def patch_speedrunjob(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        _counted(
            "patch",
            PLURAL,
            self._api.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            patch,
        )

    def patch_ladder_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        stored: dict[str, Any] = _counted(
            "patch",
            f"{LADDER_PLURAL}/status",
            self._api.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            LADDER_PLURAL,
            name,
            {"status": status},
        )
        return stored

    def post_event(self, job: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self._events(job, type_, reason, message)

    def read_text(self, url: str) -> str:
        return storage.read_text(url)


def get_speedrunjob(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = _counted(
            "get", PLURAL, api.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return found


def _counted(verb: str, resource: str, call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except ApiException as exc:
        metrics.API_ERRORS.labels(verb=verb, resource=resource, code=str(exc.status)).inc()
        raise
