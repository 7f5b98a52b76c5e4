"""The few Kubernetes calls the operator makes, each counted in the API-error metric when it fails."""

from __future__ import annotations

from functools import cache
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from speedrun_operator import kube_client, metrics
from speedrun_operator.api import GROUP, PLURAL, VERSION

RAY_GROUP, RAY_VERSION, RAYJOBS = "ray.io", "v1", "rayjobs"


FIELD_MANAGER = "speedrun-operator"
"""How managedFields name the operator's writes (see kube_client)."""


@cache
def _api() -> client.CustomObjectsApi:
    """One client for the process, so one connection pool."""
    return kube_client.custom_objects_api(FIELD_MANAGER)


def _counted(verb: str, resource: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except ApiException as exc:
        metrics.API_ERRORS.labels(verb=verb, resource=resource, code=str(exc.status)).inc()
        raise


def get_rayjob(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = _counted(
            "get",
            RAYJOBS,
            _api().get_namespaced_custom_object,
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
    return result


def create_rayjob(body: dict[str, Any]) -> dict[str, Any]:
    namespace = body["metadata"]["namespace"]
    result: dict[str, Any] = _counted(
        "create",
        RAYJOBS,
        _api().create_namespaced_custom_object,
        RAY_GROUP,
        RAY_VERSION,
        namespace,
        RAYJOBS,
        body,
    )
    return result


def patch_rayjob(namespace: str, name: str, patch: dict[str, Any]) -> None:
    _counted(
        "patch",
        RAYJOBS,
        _api().patch_namespaced_custom_object,
        RAY_GROUP,
        RAY_VERSION,
        namespace,
        RAYJOBS,
        name,
        patch,
    )


def get_speedrunjob(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = _counted(
            "get", PLURAL, _api().get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return result


def patch_speedrunjob_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    _counted(
        "patch",
        f"{PLURAL}/status",
        _api().patch_namespaced_custom_object_status,
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"status": status},
    )
