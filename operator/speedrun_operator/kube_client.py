"""The Kubernetes client the operator and the trainer share: the pod's ServiceAccount when in a cluster, else
KUBECONFIG (or ~/.kube/config), and a user agent that names the writer. The API server names each write's
field manager after the user agent, so managedFields tell our writes from anyone else's (the Python client's
default would be OpenAPI-Generator, the same as any other script's). Only the kubernetes package is needed."""

from __future__ import annotations

from importlib.metadata import version

from kubernetes import client, config


def load_config() -> None:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def custom_objects_api(field_manager: str, *, pool_size: int | None = None) -> client.CustomObjectsApi:
    """A client with its own connection pool (of ``pool_size`` connections, else the client's default); keep
    it: a new one per call pays a TLS handshake per request."""
    configuration = client.Configuration.get_default_copy()
    if pool_size is not None:
        configuration.connection_pool_maxsize = pool_size
    api_client = client.ApiClient(configuration)
    api_client.user_agent = f"{field_manager}/{version('speedrun-operator')}"
    return client.CustomObjectsApi(api_client)
