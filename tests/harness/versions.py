"""Pinned versions of every binary the local cluster harness builds, as data.

Changing a pin here (or a build recipe) is the only thing that makes the harness rebuild a binary: the cache
key is ``<name>-<version>`` plus a hash of the recipe (see :mod:`harness.build`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

KUBERNETES_VERSION = "v1.37.2"
# The staging modules (k8s.io/api, k8s.io/client-go, ...) are released as v0.<minor>.<patch>.
KUBERNETES_STAGING_VERSION = "v0.37.2"
ETCD_VERSION = "v3.6.8"
KWOK_VERSION = "v0.8.0"
# Issue 3 asks for KubeRay 1.6 or newer, but the Go module proxy serves only v1.4.0 and v1.5.0 of
# github.com/ray-project/kuberay/ray-operator (checked 2026-11-25), so the harness pins the newest one served.
KUBERAY_VERSION = "v1.5.0"
HELM_VERSION = "v3.22.0"
# The newest release the Go module proxy served on 2026-11-25; also the GCS emulator of other tests.
FAKE_GCS_SERVER_VERSION = "v1.56.1"
# The prometheus/prometheus module numbers Prometheus 3.x as v0.3xx: v0.316.0 is Prometheus 3.16.0.
PROMETHEUS_VERSION = "v0.316.0"
PROMETHEUS_RELEASE = "3.16.0"
# Kueue's manager (sigs.k8s.io/kueue/cmd/kueue), started only for the tests that ask for it.
KUEUE_VERSION = "v0.17.0"

# `go install k8s.io/kubernetes/cmd/...@v` fails because k8s.io/kubernetes replaces its staging modules with
# relative paths; a wrapper module that replaces each of them with its published version builds instead.
KUBERNETES_STAGING_MODULES: tuple[str, ...] = (
    "api",
    "apiextensions-apiserver",
    "apimachinery",
    "apiserver",
    "cli-runtime",
    "client-go",
    "cloud-provider",
    "cluster-bootstrap",
    "code-generator",
    "component-base",
    "component-helpers",
    "controller-manager",
    "cri-api",
    "cri-client",
    "csi-translation-lib",
    "dynamic-resource-allocation",
    "endpointslice",
    "externaljwt",
    "kms",
    "kube-aggregator",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "metrics",
    "mount-utils",
    "pod-security-admission",
    "sample-apiserver",
    "sample-cli-plugin",
    "sample-controller",
)


def _kubernetes_ldflags() -> tuple[str, ...]:
    # Unstamped binaries report v0.0.0-master+$Format:%H$, which kubectl and client libraries cannot parse.
    major, minor, _ = KUBERNETES_VERSION.lstrip("v").split(".")
    return (
        "-s",
        "-w",
        f"-X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION}",
        f"-X k8s.io/component-base/version.gitMajor={major}",
        f"-X k8s.io/component-base/version.gitMinor={minor}",
        "-X k8s.io/component-base/version.gitTreeState=clean",
    )


@dataclass(frozen=True)
class WrapperModule:
    """A generated Go module that requires ``module@version`` and builds packages out of it."""

    name: str
    module: str
    version: str
    replaces: tuple[tuple[str, str, str], ...] = ()  # (old path, new path, new version)
    main_go: str | None = None  # a main package of its own, when the dependency has no installable one
    imports: tuple[str, ...] = ()  # packages blank-imported so `go mod tidy` keeps what the build needs

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.version}"


@dataclass(frozen=True)
class GoBinary:
    """One binary: how to build it and how a user can point the harness at an existing one instead."""

    name: str
    version: str
    package: str  # the package to build: "." for a wrapper's own main, else an import path
    # Built inside this wrapper module; without one, with `go install package@version`.
    wrapper: WrapperModule | None = None
    ldflags: tuple[str, ...] = ("-s", "-w")
    tags: tuple[str, ...] = ()  # Go build tags
    # Looked up in $KUBEBUILDER_ASSETS (the envtest convention: etcd, kube-apiserver, kubectl).
    in_kubebuilder_assets: bool = False
    extra_env: tuple[tuple[str, str], ...] = field(default=())

    @property
    def env_override(self) -> str:
        """The environment variable naming an existing binary to use instead, e.g. SPEEDRUN_KUBE_APISERVER."""
        return "SPEEDRUN_" + self.name.upper().replace("-", "_")

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}"


KUBERNETES_WRAPPER = WrapperModule(
    name="kubernetes",
    module="k8s.io/kubernetes",
    version=KUBERNETES_VERSION,
    replaces=tuple(
        (f"k8s.io/{m}", f"k8s.io/{m}", KUBERNETES_STAGING_VERSION) for m in KUBERNETES_STAGING_MODULES
    ),
    imports=tuple(
        f"k8s.io/kubernetes/cmd/{c}"
        for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
    ),
)

# The etcd root module cannot be `go install`ed; a main that calls etcdmain.Main is all etcd's own main does.
ETCD_MAIN_GO = """\
package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
\tetcdmain.Main(os.Args)
}
"""

ETCD_WRAPPER = WrapperModule(
    name="etcd",
    module="go.etcd.io/etcd/server/v3",
    version=ETCD_VERSION,
    main_go=ETCD_MAIN_GO,
)


def _kubernetes_binary(name: str, *, in_assets: bool) -> GoBinary:
    return GoBinary(
        name=name,
        version=KUBERNETES_VERSION,
        package=f"k8s.io/kubernetes/cmd/{name}",
        wrapper=KUBERNETES_WRAPPER,
        ldflags=_kubernetes_ldflags(),
        in_kubebuilder_assets=in_assets,
    )


def _prometheus_binary(name: str) -> GoBinary:
    # remove_all_sd leaves out every service discovery but file and http (the cloud SDKs are most of the
    # build); static scrape configs need none. Without the builtinassets tag the web UI's files are read from
    # disk and the module's zip has none: the HTTP API, all the tests use, works without them.
    return GoBinary(
        name=name,
        version=PROMETHEUS_VERSION,
        package=f"github.com/prometheus/prometheus/cmd/{name}",
        ldflags=("-s", "-w", f"-X github.com/prometheus/common/version.Version={PROMETHEUS_RELEASE}"),
        tags=("remove_all_sd",),
    )


# In build order: the apiserver first (the controller-manager and scheduler then reuse most of its packages).
BINARIES: tuple[GoBinary, ...] = (
    _kubernetes_binary("kube-apiserver", in_assets=True),
    _kubernetes_binary("kube-controller-manager", in_assets=False),
    _kubernetes_binary("kube-scheduler", in_assets=False),
    # Our own kubectl of the same minor: the system one may be outside the supported version skew.
    _kubernetes_binary("kubectl", in_assets=True),
    GoBinary(
        name="etcd",
        version=ETCD_VERSION,
        package=".",
        wrapper=ETCD_WRAPPER,
        ldflags=("-s", "-w"),
        in_kubebuilder_assets=True,
    ),
    GoBinary(
        name="kwok",
        version=KWOK_VERSION,
        package="sigs.k8s.io/kwok/cmd/kwok",
    ),
    GoBinary(
        name="ray-operator",
        version=KUBERAY_VERSION,
        package="github.com/ray-project/kuberay/ray-operator",
    ),
    GoBinary(
        name="helm",
        version=HELM_VERSION,
        package="helm.sh/helm/v3/cmd/helm",
        ldflags=("-s", "-w", f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"),
    ),
    GoBinary(
        name="fake-gcs-server",
        version=FAKE_GCS_SERVER_VERSION,
        package="github.com/fsouza/fake-gcs-server",
    ),
    *(_prometheus_binary(name) for name in ("promtool", "prometheus")),
    GoBinary(
        name="kueue",
        version=KUEUE_VERSION,
        package="sigs.k8s.io/kueue/cmd/kueue",
        ldflags=("-s", "-w", f"-X sigs.k8s.io/kueue/pkg/version.GitVersion={KUEUE_VERSION}"),
    ),
)

BY_NAME: dict[str, GoBinary] = {b.name: b for b in BINARIES}

# Files the harness takes from Go modules (through the module cache) besides binaries.
KWOK_MODULE = ("sigs.k8s.io/kwok", KWOK_VERSION)
KWOK_STAGE_DIRS: tuple[str, ...] = (
    "kustomize/stage/node/fast",
    "kustomize/stage/node/heartbeat",
    "kustomize/stage/pod/fast",
)
KUBERAY_MODULE = ("github.com/ray-project/kuberay/ray-operator", KUBERAY_VERSION)
KUBERAY_CRD_DIR = "config/crd/bases"
KUEUE_MODULE = ("sigs.k8s.io/kueue", KUEUE_VERSION)
KUEUE_CRD_DIR = "config/components/crd/bases"
