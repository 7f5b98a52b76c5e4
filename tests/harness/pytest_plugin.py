"""pytest fixtures for tests against the local cluster (registered by ``tests/conftest.py``).

``cluster`` (session scope) starts one control plane the first time a test asks for it, so a run that selects
no such test starts nothing; its teardown stops every process it started and fails if any is left running.
Set ``SPEEDRUN_CLUSTER_KUBECONFIG`` to run the tests against a cluster that is already up (e.g. ``make
cluster-up``) instead. ``cluster_namespace`` gives a test a fresh namespace, deleted afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness import build, images, netsafety, processes, versions
from harness.build import say
from harness.cluster import ClusterError, LocalCluster, required_binaries, run_kubectl
from harness.images import ImageSet
from harness.node import RealNode

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi


@dataclass
class ClusterFixture:
    """What a cluster test gets: the kubeconfig, API clients and a kubectl of the cluster's version."""

    kubeconfig: Path
    kubectl_path: Path
    api_client: ApiClient
    core: CoreV1Api
    apps: AppsV1Api
    batch: BatchV1Api
    custom: CustomObjectsApi
    local: LocalCluster | None = None  # None when SPEEDRUN_CLUSTER_KUBECONFIG points at another cluster
    pids: list[int] = field(default_factory=list)

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """``cluster.kubectl("apply", "--server-side", "-f", path)``: raises on failure unless check=False."""
        return run_kubectl(
            self.kubectl_path, self.kubeconfig, args, check=check, input=input, timeout=timeout
        )

    def helm(
        self, *args: str, check: bool = True, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """The pinned helm against this cluster (built on first use): ``cluster.helm("install", ...)``."""
        home = self.kubeconfig.parent / "helm"
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        result = subprocess.run(
            [str(build.binary("helm")), *args], env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise ClusterError(f"helm {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def create(self, obj: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Create ``obj`` (a manifest as a dict) and return it as the server stored it."""
        args = ["create", "-o", "json", "-f", "-", *(["-n", namespace] if namespace else [])]
        created: dict[str, Any] = json.loads(self.kubectl(*args, input=json.dumps(obj)).stdout)
        return created

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object as a dict, or None when it does not exist."""
        args = [
            "get",
            kind,
            name,
            "-o",
            "json",
            "--ignore-not-found",
            *(["-n", namespace] if namespace else []),
        ]
        out = self.kubectl(*args).stdout
        return json.loads(out) if out.strip() else None

    def objects(
        self, kind: str, namespace: str | None = None, *, selector: str = "", field_selector: str = ""
    ) -> list[dict[str, Any]]:
        """``kubectl get KIND -l SELECTOR --field-selector FIELDS`` as a list of dicts."""
        args = ["get", kind, "-o", "json", *(["-n", namespace] if namespace else [])]
        args += [
            *(["-l", selector] if selector else []),
            *(["--field-selector", field_selector] if field_selector else []),
        ]
        items: list[dict[str, Any]] = json.loads(self.kubectl(*args).stdout)["items"]
        return items


_BUILD_ERROR = pytest.StashKey[BaseException]()
_WANTS_REAL_NODE = pytest.StashKey[bool]()
_IMAGES = pytest.StashKey[ImageSet]()
REAL_NODE_FIXTURES = ("real_node", "project_images")


def wants_real_node(config: pytest.Config) -> bool:
    """Whether this session's cluster has the real node (a selected test uses ``real_node``)."""
    return config.stash.get(_WANTS_REAL_NODE, False)


def _capture_disabled(config: pytest.Config) -> contextlib.AbstractContextManager[None]:
    capture = config.pluginmanager.getplugin("capturemanager")
    return capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build missing binaries before the first test, outside every test's timeout, when one needs a cluster.

    A cold build takes many minutes on a small machine; done here it is neither counted against pytest-timeout
    nor started at all when no selected test uses the ``cluster`` fixture.
    """
    config = session.config
    if config.option.collectonly or os.environ.get("SPEEDRUN_CLUSTER_KUBECONFIG"):
        return
    used = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    config.stash[_WANTS_REAL_NODE] = "real_node" in used or os.environ.get("SPEEDRUN_REAL_NODE") == "1"
    if not used & {"cluster", *REAL_NODE_FIXTURES}:
        return
    with _capture_disabled(config):
        try:
            if "cluster" in used:
                build.ensure([*required_binaries(), *(["kueue"] if "kueue" in used else [])])
            # The node's binaries and the images take minutes cold: outside every test's timeout too.
            if "real_node" in used:
                from harness.node import prepare

                config.stash[_IMAGES] = prepare()
            elif "project_images" in used:
                config.stash[_IMAGES] = images.ensure_images()
                say("image build times: " + config.stash[_IMAGES].summary())
        except Exception as exc:  # reported by the fixture, so that tests without a cluster still run
            config.stash[_BUILD_ERROR] = exc


def _clients(kubeconfig: Path, kubectl: Path, local: LocalCluster | None) -> ClusterFixture:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return ClusterFixture(
        kubeconfig=kubeconfig,
        kubectl_path=kubectl,
        api_client=api,
        core=client.CoreV1Api(api),
        apps=client.AppsV1Api(api),
        batch=client.BatchV1Api(api),
        custom=client.CustomObjectsApi(api),
        local=local,
        pids=list(local.pids) if local else [],
    )


@pytest.fixture(scope="session")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[ClusterFixture]:
    external = os.environ.get("SPEEDRUN_CLUSTER_KUBECONFIG")
    if external:
        found = build.find_existing(versions.BY_NAME["kubectl"])
        kubectl = found.path if found else Path(shutil.which("kubectl") or "kubectl")
        fixture = _clients(Path(external), kubectl, None)
        yield fixture
        fixture.api_client.close()  # type: ignore[no-untyped-call]
        return
    build_error = pytestconfig.stash.get(_BUILD_ERROR, None)
    if build_error is not None:
        raise ClusterError(f"building the cluster's binaries failed: {build_error}") from build_error
    real_node = pytestconfig.stash.get(_WANTS_REAL_NODE, False)
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), real_node=real_node)
    try:
        # Show start-up timings live, not only in the captured output of a failure.
        with _capture_disabled(pytestconfig):
            local.start()
        fixture = _clients(local.kubeconfig, local.kubectl_path, local)
        yield fixture
        fixture.api_client.close()  # type: ignore[no-untyped-call]
    finally:
        pids = list(local.pids)
        local.stop()
        left = [pid for pid in pids if processes.pid_alive(pid)]
        if left:
            pytest.fail(f"harness processes still running after teardown: {left}")
        if local.owned_node:
            from harness.node import leftovers, mounts_under

            remains = leftovers() + netsafety.leftovers() + mounts_under(local.run_dir)
            if remains:
                pytest.fail(f"the real node left these behind after teardown: {remains}")


@pytest.fixture(scope="session")
def project_images(pytestconfig: pytest.Config) -> ImageSet:
    """The project's images built with podman (cached by input hash; see :mod:`harness.images`)."""
    build_error = pytestconfig.stash.get(_BUILD_ERROR, None)
    if build_error is not None:
        raise ClusterError(f"building the node's binaries or images failed: {build_error}") from build_error
    # The set built before the session, even if the tree changed since (other engineers' edits).
    return pytestconfig.stash.get(_IMAGES, None) or images.ensure_images()


@pytest.fixture(scope="session")
def real_node(cluster: ClusterFixture) -> RealNode:
    """The cluster's kubelet node (pool ``local``), running the project's images; see :mod:`harness.node`."""
    if cluster.local is None or cluster.local.node is None:
        raise ClusterError("this cluster has no real node (SPEEDRUN_CLUSTER_KUBECONFIG points elsewhere?)")
    return cluster.local.node


@pytest.fixture(scope="session")
def kueue(cluster: ClusterFixture, pytestconfig: pytest.Config) -> ClusterFixture:
    """The cluster with Kueue's manager running beside it (see :mod:`harness.kueue`): started the first
    time a test asks, then kept for the session. With SPEEDRUN_CLUSTER_KUBECONFIG, Kueue must be there."""
    if cluster.local is None:
        if cluster.get("crd", "workloads.kueue.x-k8s.io") is None:
            raise ClusterError("the cluster at SPEEDRUN_CLUSTER_KUBECONFIG has no Kueue (workloads CRD)")
        return cluster
    with _capture_disabled(pytestconfig):
        cluster.local.start_kueue()
    cluster.pids[:] = list(cluster.local.pids)
    return cluster


@pytest.fixture
def cluster_namespace(cluster: ClusterFixture) -> Iterator[str]:
    """A namespace of its own for one test; deleted (without waiting) when the test ends."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.kubectl("create", "namespace", name)
    if cluster.local is not None and cluster.local.real_node:
        # ServiceAccount admission is on with a real node: a pod in a namespace without `default` is refused.
        from harness.cluster import wait_for

        wait_for(
            lambda: (
                cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0
            ),
            what=f"ServiceAccount default in {name}",
            timeout=60,
            interval=0.2,
        )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
