"""Pins and builds of the real node's binaries: kubelet, kube-proxy, CoreDNS and the pause program.

They are kept apart from :mod:`harness.versions` so that the control plane's cache keys stay as they are: the
kubelet needs two more replaced staging modules than the apiserver's wrapper has, so it gets a wrapper module
of its own (sharing Go's build cache, so it is mostly a relink). Built into the same cache, under the same
lock, and rebuilt only when a pin or recipe changes.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from harness import build, versions
from harness.build import say
from harness.versions import GoBinary, WrapperModule

COREDNS_VERSION = "v1.15.0"
# The kubelet imports these two besides the 31 staging modules of the control plane's wrapper.
_NODE_EXTRA_STAGING = ("cri-streaming", "streaming")

NODE_WRAPPER = WrapperModule(
    name="kubernetes-node",
    module="k8s.io/kubernetes",
    version=versions.KUBERNETES_VERSION,
    replaces=tuple(
        (f"k8s.io/{m}", f"k8s.io/{m}", versions.KUBERNETES_STAGING_VERSION)
        for m in (*versions.KUBERNETES_STAGING_MODULES, *_NODE_EXTRA_STAGING)
    ),
    imports=tuple(f"k8s.io/kubernetes/cmd/{c}" for c in ("kubelet", "kube-proxy")),
)


def _node_binary(name: str) -> GoBinary:
    control = versions.BY_NAME["kube-apiserver"]
    return GoBinary(
        name=name,
        version=versions.KUBERNETES_VERSION,
        package=f"k8s.io/kubernetes/cmd/{name}",
        wrapper=NODE_WRAPPER,
        ldflags=control.ldflags,
    )


NODE_BINARIES: tuple[GoBinary, ...] = (
    _node_binary("kubelet"),
    _node_binary("kube-proxy"),
    GoBinary(name="coredns", version=COREDNS_VERSION, package="github.com/coredns/coredns"),
)

# The pod sandbox's pause program, compiled from the kubernetes module's source (no registry to pull from).
PAUSE_SOURCE = "build/pause/linux/pause.c"


def ensure_node_binaries(cache: Path | None = None) -> dict[str, Path]:
    """kubelet, kube-proxy, coredns and pause, each found in the cache or built once."""
    cache = cache or build.cache_dir()
    found: dict[str, Path] = {}
    missing = []
    for binary in NODE_BINARIES:
        existing = build.find_existing(binary, cache)
        if existing is None:
            missing.append(binary)
        else:
            found[binary.name] = existing.path
    pause = cache / "bin" / f"pause-{versions.KUBERNETES_VERSION}"
    if missing or not pause.exists():
        with build.build_lock(cache):
            for binary in missing:
                found[binary.name] = (build.find_existing(binary, cache) or build.build(binary, cache)).path
            if not pause.exists():
                _build_pause(pause, cache)
    found["pause"] = pause
    return found


def _build_pause(target: Path, cache: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise build.BuildError("gcc is needed to compile the pod sandbox's pause program")
    started = time.monotonic()
    source = build.module_dir("k8s.io/kubernetes", versions.KUBERNETES_VERSION, cache) / PAUSE_SOURCE
    tmp = target.with_name(f".{target.name}.tmp")
    version = f'"{versions.KUBERNETES_VERSION}"'
    subprocess.run(
        [gcc, "-Os", "-static", "-Wall", "-Werror", f"-DVERSION={version}", "-o", str(tmp), str(source)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    tmp.replace(target)
    say(f"built pause in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    for name, path in ensure_node_binaries().items():
        say(f"{name}: {path}")
