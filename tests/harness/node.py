"""A real node beside the kwok pools: containerd, kubelet, kube-proxy and CoreDNS on the harness's bridge.

The node registers as ``NODE_NAME``, labelled and tainted ``pool=local`` so that only pods asking for it land
there. Images reach containerd without a registry (``ctr images import`` of podman's OCI archives), and
containerd's HTTP(S) proxy points at a dead local port so that an accidental pull fails at once, locally.
CoreDNS answers cluster names only (no ``forward``). The control plane must already serve on the bridge's
gateway address (:class:`harness.cluster.LocalCluster` with ``real_node=True`` does both in order).

Stopping drains the node's pods (so the kubelet tears down their sandboxes and networks), stops the processes,
then removes whatever a crash could have left: runc containers, containerd shims, network namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import build, images, netsafety, pki, processes
from harness.build import say

NODE_NAME = "speedrun-local-node"
POOL_LABEL = ("pool", "local")
TAINT = "pool=local:NoSchedule"
CLUSTER_DOMAIN = "cluster.local"
# Runtime state lives in /run (tmpfs, gone at reboot) under fixed names so that a later run finds and removes
# what a crashed one left; images persist in containerd's root in the harness cache (warm runs reuse them).
STATE_DIR = Path("/run/speedrun-node")
CONTAINERD_SOCKET = STATE_DIR / "containerd.sock"
RUNC_ROOT = STATE_DIR / "runc"
# Where the CRI plugin mounts pod network namespaces (netns_mounts_under_state_dir).
NETNS_DIR = STATE_DIR / "containerd" / "io.containerd.grpc.v1.cri" / "netns"
K8S_NAMESPACE = "k8s.io"


def dead_proxy_port() -> int:
    """A local port nothing listens on: containerd's proxy, so a pull fails here instead of going out."""
    return processes.free_ports(1)[0]


@dataclass
class NodeTimings:
    images: str = ""
    import_seconds: float = 0.0
    ready_seconds: float = 0.0


@dataclass
class RealNode:
    """The node's processes and files in ``run_dir``; started by :class:`harness.cluster.LocalCluster`."""

    run_dir: Path
    supervisor: processes.Supervisor
    server: str
    kubectl: Callable[..., subprocess.CompletedProcess[str]]
    ca: pki.KeyPair
    ca_key_dir: Path
    service_cidr: str
    image_set: images.ImageSet | None = None
    timings: NodeTimings = field(default_factory=NodeTimings)
    children: list[processes.ManagedProcess] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)

    # --- start --------------------------------------------------------------------------------------------

    def start(self) -> None:
        binaries = _node_binaries()
        started = time.monotonic()
        self.image_set = prepare()
        self.timings.images = self.image_set.summary()
        cleanup_runtime()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        names = ["kubelet", "kubelet-healthz", "kube-proxy-healthz", "kube-proxy-metrics", "dead-proxy"]
        self.ports = dict(zip(names, processes.free_ports(len(names)), strict=True))
        containerd = self._start_containerd()
        import_started = time.monotonic()
        self._import_images()
        self.timings.import_seconds = time.monotonic() - import_started
        ready_started = time.monotonic()
        kubelet = self._start_kubelet(binaries["kubelet"])
        proxy = self._start_kube_proxy(binaries["kube-proxy"])
        dns = self._start_coredns(binaries["coredns"])
        watch = [containerd, kubelet, proxy, dns]
        seconds = processes.wait_until(
            self._node_ready, what=f"node {NODE_NAME} Ready", timeout=120, interval=0.3, watch=watch
        )
        self.timings.ready_seconds = time.monotonic() - ready_started
        say(
            f"real node {NODE_NAME} Ready {seconds:.1f} s after the kubelet started "
            f"(images imported into containerd in {self.timings.import_seconds:.1f} s; "
            f"node total {time.monotonic() - started:.0f} s)"
        )

    def _start(
        self, name: str, argv: Sequence[str], env: dict[str, str] | None = None
    ) -> processes.ManagedProcess:
        child_env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        child_env.update(env or {})
        log = self.run_dir.parent / "logs" / f"{name}.log"
        child = self.supervisor.start(name, argv, log=log, env=child_env, cwd=self.run_dir)
        self.children.append(child)
        return child

    def _kubeconfig(self, name: str, subject: str) -> Path:
        pair = pki.sign_client(self.ca_key_dir, name, subject)
        return pki.write_kubeconfig(
            self.run_dir / f"{name}.kubeconfig",
            server=self.server,
            ca=self.ca.cert,
            client=pair,
            user=name,
            context="speedrun-local",
        )

    def _start_containerd(self) -> processes.ManagedProcess:
        exe = shutil.which("containerd")
        if exe is None:
            raise build.BuildError("containerd is not installed (`make e2e-packages` installs it)")
        assert self.image_set is not None and self.image_set.pause is not None
        cni_dir = self.run_dir / "cni"
        cni_dir.mkdir(parents=True, exist_ok=True)
        (cni_dir / "10-speedrun.conflist").write_text(json.dumps(cni_config(self.run_dir, self.service_cidr)))
        config = self.run_dir / "containerd.toml"
        config.write_text(containerd_config(self.run_dir, self.image_set.pause.ref))
        dead = f"http://127.0.0.1:{self.ports['dead-proxy']}"
        env = {
            "HTTP_PROXY": dead,
            "HTTPS_PROXY": dead,
            "NO_PROXY": "",
            "http_proxy": dead,
            "https_proxy": dead,
        }
        containerd = self._start("containerd", [exe, f"--config={config}"], env)
        processes.wait_until(
            lambda: _ctr("version", check=False).returncode == 0,
            what="containerd's socket",
            timeout=30,
            watch=[containerd],
        )
        return containerd

    def _import_images(self) -> None:
        assert self.image_set is not None
        present = set(_ctr("images", "ls", "-q").stdout.split())
        archives = images_cache_dir()
        wanted = [*self.image_set.images.values(), *([self.image_set.pause] if self.image_set.pause else [])]
        for image in wanted:
            if image.ref in present:
                continue
            started = time.monotonic()
            archive = images.save_oci_archive(
                image.ref, archives / f"{image.ref.replace('/', '_').replace(':', '_')}.tar"
            )
            saved = time.monotonic() - started
            _ctr("images", "import", f"--base-name={image.ref.rsplit(':', 1)[0]}", str(archive), timeout=900)
            archive.unlink()
            say(
                f"  {image.ref} into containerd: save {saved:.0f} s, "
                f"import {time.monotonic() - started - saved:.0f} s"
            )
        # Older builds of our images would pile up in containerd's root (the kubelet's image GC is off).
        repositories = {i.ref.rsplit(":", 1)[0] for i in wanted}
        stale = [
            name
            for name in _ctr("images", "ls", "-q").stdout.split()
            if name.rsplit(":", 1)[0] in repositories and name not in {i.ref for i in wanted}
        ]
        if stale:
            _ctr("images", "rm", *stale, check=False, timeout=300)
            _remove_untagged_ids()
        missing = {i.ref for i in wanted} - set(_ctr("images", "ls", "-q").stdout.split())
        if missing:
            raise build.BuildError(f"containerd lacks {sorted(missing)} after import")

    def _start_kubelet(self, exe: Path) -> processes.ManagedProcess:
        kubeconfig = self._kubeconfig("kubelet", f"/O=system:nodes/CN=system:node:{NODE_NAME}")
        config = self.run_dir / "kubelet.yaml"
        config.write_text(json.dumps(kubelet_config(self.run_dir, self.ca.cert, self.ports), indent=2))
        return self._start(
            "kubelet",
            [
                str(exe),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={netsafety.GATEWAY}",
                f"--node-labels={POOL_LABEL[0]}={POOL_LABEL[1]}",
                f"--root-dir={self.run_dir / 'kubelet'}",
                f"--cert-dir={self.run_dir / 'kubelet-pki'}",
                "--v=1",
            ],
        )

    def _start_kube_proxy(self, exe: Path) -> processes.ManagedProcess:
        kubeconfig = self._kubeconfig("kube-proxy", "/O=system:masters/CN=system:kube-proxy")
        config = self.run_dir / "kube-proxy.yaml"
        config.write_text(json.dumps(kube_proxy_config(kubeconfig, self.ports), indent=2))
        return self._start("kube-proxy", [str(exe), f"--config={config}", "--v=1"])

    def _start_coredns(self, exe: Path) -> processes.ManagedProcess:
        kubeconfig = self._kubeconfig("coredns", "/O=system:masters/CN=coredns")
        corefile = self.run_dir / "Corefile"
        corefile.write_text(coredns_corefile(kubeconfig))
        return self._start("coredns", [str(exe), f"-conf={corefile}"])

    def _node_ready(self) -> bool:
        result = self.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
        if result.returncode != 0:
            return False
        node = json.loads(result.stdout)
        conditions = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        taints = {t["key"] for t in node.get("spec", {}).get("taints", []) or []}
        return conditions.get("Ready") == "True" and "node.kubernetes.io/not-ready" not in taints

    # --- stop ---------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Drain the pods, stop the processes, remove the containers (the cluster removes the network)."""
        if any(c.running() for c in self.children):
            self._drain()
        for child in reversed(self.children):
            child.stop(timeout=10)
        cleanup_runtime()
        # Volumes the kubelet mounted (tokens, emptyDirs) would outlive it and pin the run directory.
        for mount in mounts_under(self.run_dir):
            subprocess.run(["umount", "--lazy", mount], capture_output=True, timeout=30)

    def _drain(self) -> None:
        pods = self.kubectl(
            "get", "pods", "-A", f"--field-selector=spec.nodeName={NODE_NAME}", "-o", "json", check=False
        )
        if pods.returncode != 0:
            return
        items = json.loads(pods.stdout).get("items", [])
        for pod in items:
            meta = pod["metadata"]
            self.kubectl(
                "delete",
                "pod",
                "-n",
                meta["namespace"],
                meta["name"],
                "--grace-period=1",
                "--wait=false",
                check=False,
            )
        # The kubelet stops each sandbox (CNI DEL removes its veth and address) before the pod object goes.
        deadline = time.monotonic() + 40
        while items and time.monotonic() < deadline:
            if not _running_sandboxes():
                break
            time.sleep(0.5)


def sweep_if_unowned() -> list[str]:
    """Remove a dead run's node leftovers, unless a live harness run owns the real node right now."""
    with netsafety.node_lock(wait=False) as owned:
        if not owned:
            return []
        return cleanup_runtime() + netsafety.remove()


_prepared: list[images.ImageSet] = []


def prepare() -> images.ImageSet:
    """Build what the node needs (its binaries, the images) without starting anything; prints the times.

    Once per process: pytest prepares before the session's tests, and the node then runs those very images
    even if the tree changed in between.
    """
    if not _prepared:
        image_set = images.ensure_images(pause_binary=_node_binaries()["pause"])
        say("image build times: " + image_set.summary())
        _prepared.append(image_set)
    return _prepared[0]


def leftovers() -> list[str]:
    """Containers, shims and network namespaces of the node still present (empty after a clean stop)."""
    found = [f"containerd shim {pid}" for pid in shim_pids()]
    runc_root = RUNC_ROOT / K8S_NAMESPACE
    if runc_root.is_dir() and shutil.which("runc"):
        listing = subprocess.run(
            ["runc", f"--root={runc_root}", "list", "-q"], capture_output=True, text=True, timeout=30
        )
        found += [f"runc container {c[:12]}" for c in listing.stdout.split()]
    netns_dir = NETNS_DIR
    if netns_dir.is_dir():
        found += [f"netns {n.name}" for n in netns_dir.iterdir()]
    return found


def _node_binaries() -> dict[str, Path]:
    from harness.node_binaries import ensure_node_binaries

    return ensure_node_binaries()


def images_cache_dir() -> Path:
    return build.cache_dir() / "podman" / "archives"


def _ctr(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    argv = ["ctr", f"--address={CONTAINERD_SOCKET}", f"--namespace={K8S_NAMESPACE}", *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise build.BuildError(f"ctr {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result


def _remove_untagged_ids() -> None:
    orphans = orphan_ids(_ctr("images", "ls").stdout)
    if orphans:
        _ctr("images", "rm", *orphans, check=False, timeout=300)


def orphan_ids(listing: str) -> list[str]:
    """The CRI keeps a ``sha256:<id>`` reference beside each tag: those whose tags are gone (from ``ctr images
    ls``, whose first columns are REF TYPE DIGEST)."""
    rows = [line.split() for line in listing.splitlines()[1:] if line.strip()]
    tagged = {row[2] for row in rows if not row[0].startswith("sha256:")}
    return [row[0] for row in rows if row[0].startswith("sha256:") and row[2] not in tagged]


def _running_sandboxes() -> list[str]:
    tasks = _ctr("tasks", "ls", "-q", check=False)
    return tasks.stdout.split() if tasks.returncode == 0 else []


def cleanup_runtime() -> list[str]:
    """Kill runc containers, containerd shims and network namespaces a previous (or this) run left."""
    removed = []
    runc_root = RUNC_ROOT / K8S_NAMESPACE
    if runc_root.is_dir() and shutil.which("runc"):
        listing = subprocess.run(
            ["runc", f"--root={runc_root}", "list", "-q"], capture_output=True, text=True, timeout=30
        )
        for container in listing.stdout.split():
            subprocess.run(
                ["runc", f"--root={runc_root}", "delete", "--force", container],
                capture_output=True,
                timeout=30,
            )
            removed.append(f"container {container[:12]}")
    for pid in shim_pids():
        try:
            os.kill(pid, signal.SIGKILL)
            removed.append(f"shim {pid}")
        except ProcessLookupError:
            pass
    netns_dir = NETNS_DIR
    if netns_dir.is_dir():
        for netns in netns_dir.iterdir():
            subprocess.run(["umount", str(netns)], capture_output=True, timeout=30)
            netns.unlink(missing_ok=True)
            removed.append(f"netns {netns.name}")
    return removed


def mounts_under(directory: Path) -> list[str]:
    """Mount points below ``directory``, deepest first."""
    prefix = str(directory.resolve()) + "/"
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point.startswith(prefix):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def shim_pids() -> list[int]:
    """containerd shims serving our socket (they detach from containerd, so no process group holds them)."""
    marker = str(CONTAINERD_SOCKET).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"containerd-shim" in cmdline and marker in cmdline:
            pids.append(int(entry.name))
    return pids


# --- configuration files ------------------------------------------------------------------------------------


def cni_config(run_dir: Path, service_cidr: str) -> dict[str, object]:
    # Routes to the pod range (on-link) and the service range (via the gateway) only: no default route.
    return {
        "cniVersion": "1.0.0",
        "name": "speedrun",
        "plugins": [
            {
                "type": "bridge",
                "bridge": netsafety.BRIDGE,
                "isGateway": True,
                "isDefaultGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(run_dir / "cni-ipam"),
                    "ranges": [[{"subnet": netsafety.POD_CIDR, "gateway": netsafety.GATEWAY}]],
                    "routes": [{"dst": service_cidr}],
                },
            }
        ],
    }


def containerd_config(run_dir: Path, pause_ref: str) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""\
version = 2
root = "{build.cache_dir() / "node" / "containerd"}"
state = "{STATE_DIR / "containerd"}"

[grpc]
  address = "{CONTAINERD_SOCKET}"

[ttrpc]
  address = "{STATE_DIR / "containerd-ttrpc.sock"}"

[debug]
  address = ""

[{cri}]
  sandbox_image = "{pause_ref}"
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which this machine withholds: without it sandboxes fail.
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"

[{cri}.containerd]
  default_runtime_name = "runc"
  snapshotter = "overlayfs"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{RUNC_ROOT}"

[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{run_dir / "cni"}"
"""


def kubelet_config(run_dir: Path, ca_cert: Path, ports: dict[str, int]) -> dict[str, object]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,  # this machine has cgroups v1
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
        "address": netsafety.GATEWAY,
        "port": ports["kubelet"],  # kwok owns nothing here, but the default 10250 may be someone else's
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports["kubelet-healthz"],
        "maxOpenFiles": 20000,  # the machine's hard nofile limit
        "protectKernelDefaults": False,
        "podCIDR": netsafety.POD_CIDR,
        "clusterDNS": [netsafety.GATEWAY],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": "",
        "podLogsDir": str(run_dir / "pod-logs"),
        "registerWithTaints": [{"key": "pool", "value": "local", "effect": "NoSchedule"}],
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "localStorageCapacityIsolation": True,
    }


def kube_proxy_config(kubeconfig: Path, ports: dict[str, int]) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clusterCIDR": netsafety.POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "healthzBindAddress": f"127.0.0.1:{ports['kube-proxy-healthz']}",
        "metricsBindAddress": f"127.0.0.1:{ports['kube-proxy-metrics']}",
        "nodePortAddresses": [f"{netsafety.GATEWAY}/32"],
        "conntrack": {"maxPerCore": 0},  # leave the machine's conntrack sysctls alone
    }


def coredns_corefile(kubeconfig: Path) -> str:
    # No `forward`: a name outside the cluster fails here instead of being looked up outside the machine.
    return f"""\
.:53 {{
    bind {netsafety.GATEWAY}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} speedrun-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
}}
"""
