"""A Kubernetes control plane on loopback: etcd, kube-apiserver, controller-manager, scheduler, kwok, KubeRay.

Usage::

    with LocalCluster(run_dir) as cluster:      # builds missing binaries first (cached), then starts
        cluster.kubectl("get", "nodes")

Everything listens on 127.0.0.1 on free ports; logs, certificates, etcd data, kubeconfigs and the pid file
live in ``run_dir``. kwok gives pods fake IPs from ``KWOK_POD_CIDR``, a range nothing else uses: nothing in
the harness connects to a pod IP (on a later real node, reaching those addresses must fail locally).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from harness import build, kueue, netsafety, node, pki, pools, processes
from harness.build import say

SERVICE_CIDR = "10.0.0.0/24"
FIRST_SERVICE_IP = "10.0.0.1"
KWOK_POD_CIDR = "10.250.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
KUBERAY_CRDS = ("rayclusters.ray.io", "rayjobs.ray.io", "rayservices.ray.io")
STATE_FILE = "state.json"
PID_FILE = "pids.json"

CORE_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")


class ClusterError(RuntimeError):
    pass


def required_binaries(*, kuberay: bool = True) -> list[str]:
    return [*CORE_BINARIES, *(["ray-operator"] if kuberay else [])]


@dataclass
class ClusterState:
    """What another process needs to find (and stop) a running cluster: written to ``run_dir/state.json``."""

    run_dir: str
    kubeconfig: str
    server: str
    kubectl: str
    supervisor_pid: int
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    ready_seconds: float = 0.0
    build_seconds: dict[str, float] = field(default_factory=dict)
    real_node: bool = False
    node_ready_seconds: float = 0.0

    def write(self, run_dir: Path) -> None:
        tmp = run_dir / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, run_dir / STATE_FILE)

    @classmethod
    def read(cls, run_dir: Path) -> ClusterState | None:
        try:
            data = json.loads((run_dir / STATE_FILE).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


class LocalCluster:
    """One control plane in ``run_dir``; :meth:`start` and :meth:`stop` (or use it as a context manager)."""

    def __init__(
        self,
        run_dir: Path,
        *,
        node_pools: Sequence[pools.Pool] | None = None,
        kuberay: bool = True,
        die_with_parent: bool = True,
        ready_timeout: float = 120.0,
        real_node: bool = False,
    ) -> None:
        """``real_node``: also a kubelet node (see :mod:`harness.node`); the API server then serves on the
        node's bridge gateway with ServiceAccount tokens, and KubeRay reaches Ray dashboards through it."""
        self.run_dir = run_dir.resolve()
        self.node_pools = list(pools.load_pools() if node_pools is None else node_pools)
        self.kuberay = kuberay
        self.die_with_parent = die_with_parent
        self.ready_timeout = ready_timeout
        self.kubeconfig = self.run_dir / "kubeconfig"
        self.supervisor: processes.Supervisor | None = None
        self.binaries: dict[str, build.Resolved] = {}
        self.ports: dict[str, int] = {}
        self.server = ""
        self.ready_seconds = 0.0
        self.build_seconds: dict[str, float] = {}
        self.real_node = real_node
        self.node: node.RealNode | None = None
        self._node_lock = contextlib.ExitStack()
        self._owned_node = False
        self._node_released = False
        self.kueue_seconds: float | None = None  # how long Kueue took to be ready, once started

    # --- public -------------------------------------------------------------------------------------------

    @property
    def pids(self) -> list[int]:
        return self.supervisor.pids if self.supervisor else []

    @property
    def kubectl_path(self) -> Path:
        return self.binaries["kubectl"].path

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run our kubectl against this cluster; raises with its stderr when ``check`` and it fails."""
        return run_kubectl(
            self.kubectl_path, self.kubeconfig, args, check=check, input=input, timeout=timeout
        )

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        try:
            if self.node is not None:
                self.node.stop()
        finally:
            if self.supervisor is not None:
                self.supervisor.stop_all()
            # Only the run that holds the machine's node lock may touch the node's network and containers:
            # a run stopped while waiting for the lock must leave another run's node alone.
            if self._owned_node and not self._node_released:
                node.cleanup_runtime()
                netsafety.remove()
                self._node_released = True  # a second stop() must not touch a node another run took since
            self._node_lock.close()
            (self.run_dir / STATE_FILE).unlink(missing_ok=True)

    @property
    def owned_node(self) -> bool:
        """Whether this run took the machine's real node (its clean-up is then this run's to check)."""
        return self._owned_node

    @property
    def host(self) -> str:
        """Where the control plane listens: loopback, or the bridge gateway that pods can reach."""
        return netsafety.GATEWAY if self.real_node else "127.0.0.1"

    def start(self) -> None:
        build_started = time.monotonic()
        self.binaries = build.ensure(required_binaries(kuberay=self.kuberay))
        built = {n: r.build_seconds or 0.0 for n, r in self.binaries.items() if r.source == "built"}
        if not built:
            say(
                "binaries cached; recorded cold build times: "
                + build.format_build_times(build.cold_build_seconds())
            )
        else:
            say(
                f"cold build took {time.monotonic() - build_started:.0f} s: {build.format_build_times(built)}"
            )
        self.build_seconds = build.cold_build_seconds()
        stages = build.kwok_stages_file()
        crds = build.kuberay_crd_dir() if self.kuberay else None

        started = time.monotonic()
        self._clear_previous_run()
        if self.real_node:
            self._owned_node = self._node_lock.enter_context(netsafety.node_lock())
            netsafety.create(KWOK_POD_CIDR, SERVICE_CIDR)
        self.supervisor = processes.Supervisor(self.run_dir / PID_FILE, die_with_parent=self.die_with_parent)
        port_names = ["etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok"]
        port_names += ["ray-metrics", "ray-probe"]
        self.ports = dict(zip(port_names, processes.free_ports(len(port_names)), strict=True))
        self.server = f"https://{self.host}:{self.ports['apiserver']}"
        extra_ips = [netsafety.GATEWAY] if self.real_node else []
        certs = pki.make_pki(self.run_dir / "pki", first_service_ip=FIRST_SERVICE_IP, extra_ips=extra_ips)
        kubeconfigs = {
            name: pki.write_kubeconfig(
                self.run_dir / ("kubeconfig" if name == "admin" else f"{name}.kubeconfig"),
                server=self.server,
                ca=certs.ca.cert,
                client=pair,
                user=name,
                context="speedrun-local",
            )
            for name, pair in certs.clients.items()
        }

        etcd = self._start_etcd()
        apiserver = self._start_apiserver(certs, etcd)
        controllers = self._start_controllers(certs, kubeconfigs, stages)
        if self.node_pools:
            self.kubectl("create", "-f", "-", input=json.dumps(pools.node_list(self.node_pools)))
        if crds is not None:
            self._install_kuberay(crds, kubeconfigs["ray-operator"], [apiserver, *controllers])
        self._wait_ready(apiserver, controllers)
        self.ready_seconds = time.monotonic() - started
        if self.real_node:
            self.node = node.RealNode(
                run_dir=self.run_dir / "node",
                supervisor=self.supervisor,
                server=self.server,
                kubectl=self.kubectl,
                ca=certs.ca,
                ca_key_dir=certs.directory,
                service_cidr=SERVICE_CIDR,
            )
            self.node.start()
        self._write_state()
        say(
            f"cluster ready in {self.ready_seconds:.1f} s (binaries cached; build not counted): {self.server}"
        )

    def start_kueue(self) -> float:
        """Kueue's manager beside this cluster (see :mod:`harness.kueue`), started once; returns the seconds
        it took to be ready (CRDs established, webhooks registered)."""
        if self.kueue_seconds is not None:
            return self.kueue_seconds
        assert self.supervisor is not None, "start the cluster first"
        binary = build.ensure(["kueue"])["kueue"].path
        started = time.monotonic()
        crds = kueue.crd_dir()
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
        self.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            *(f"crd/{n}" for n in kueue.crd_names(crds)),
        )
        self.kubectl("create", "namespace", kueue.NAMESPACE)
        health, metrics, webhook = processes.free_ports(3)
        self.ports.update({"kueue-health": health, "kueue-metrics": metrics, "kueue-webhook": webhook})
        pki_dir = self.run_dir / "pki"
        client = pki.sign_client(pki_dir, "kueue", "/O=system:masters/CN=kueue")
        kubeconfig = pki.write_kubeconfig(
            self.run_dir / "kueue.kubeconfig",
            server=self.server,
            ca=pki_dir / "ca.crt",
            client=client,
            user="kueue",
            context="speedrun-local",
        )
        serving = pki.sign_server(pki_dir, "kueue-webhook", ["127.0.0.1"])
        cert_dir = self.run_dir / "kueue" / "certs"
        cert_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(serving.cert, cert_dir / "tls.crt")
        shutil.copyfile(serving.key, cert_dir / "tls.key")
        config = kueue.write_json(
            self.run_dir / "kueue" / "config.yaml",
            kueue.configuration(
                health_port=health, metrics_port=metrics, webhook_port=webhook, cert_dir=cert_dir
            ),
        )
        argv, env = kueue.command(
            binary,
            config=config,
            kubeconfig=kubeconfig,
            etc_layer=self.run_dir / "kueue" / "etc",
            metrics_cert=serving.cert,
            metrics_key=serving.key,
        )
        process = self._start("kueue", argv, env)
        processes.wait_until(
            lambda: processes.http_ok(f"http://127.0.0.1:{health}/readyz"),
            what="Kueue /readyz",
            timeout=self.ready_timeout,
            watch=[process],
        )
        for configuration in kueue.webhook_configurations(
            kueue.webhook_manifests_text(),
            url=f"https://127.0.0.1:{webhook}",
            ca_bundle=(pki_dir / "ca.crt").read_bytes(),
        ):
            self.kubectl(
                "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(configuration)
            )
        self.kueue_seconds = time.monotonic() - started
        self._write_state()
        say(f"  Kueue ready in {self.kueue_seconds:.1f} s")
        return self.kueue_seconds

    def _clear_previous_run(self) -> None:
        """Every start is a fresh cluster: old etcd data would not match the new certificates and keys."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        alive = [
            n for n, p, t in processes.recorded_children(self.run_dir / PID_FILE) if processes.pid_alive(p, t)
        ]
        if alive:
            raise ClusterError(
                f"{self.run_dir} is in use by a running cluster ({', '.join(alive)}); stop it first"
            )
        for name in ("etcd", "pki", "logs", "apiserver", "controller-manager", "scheduler", "helm", "kueue"):
            shutil.rmtree(self.run_dir / name, ignore_errors=True)
        for path in self.run_dir.glob("*kubeconfig"):
            path.unlink()
        for name in (STATE_FILE, PID_FILE):
            (self.run_dir / name).unlink(missing_ok=True)

    # --- components ---------------------------------------------------------------------------------------

    def _log(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def _bin(self, name: str) -> str:
        return str(self.binaries[name].path)

    def _start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> processes.ManagedProcess:
        assert self.supervisor is not None
        child_env = dict(os.environ)
        child_env.pop("KUBECONFIG", None)  # each component is told its kubeconfig explicitly
        child_env.update(env or {})
        return self.supervisor.start(name, argv, log=self._log(name), env=child_env, cwd=self.run_dir)

    def _start_etcd(self) -> processes.ManagedProcess:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        etcd = self._start(
            "etcd",
            [
                self._bin("etcd"),
                "--name=harness",
                f"--data-dir={self.run_dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=harness={peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        seconds = processes.wait_until(
            lambda: processes.http_ok(f"{client}/health", expect="true"),
            what="etcd /health",
            timeout=60,
            watch=[etcd],
        )
        say(f"  etcd up in {seconds:.1f} s")
        return etcd

    def _apiserver_network_flags(self, certs: pki.ClusterPki) -> list[str]:
        if not self.real_node:
            return [
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # The endpoint reconciler refuses a loopback advertise address and would make the server exit.
                "--endpoint-reconciler-type=none",
                # kwok pods get no token mounted: skip the ServiceAccount admission (and its token wait).
                "--disable-admission-plugins=ServiceAccount",
            ]
        # Pods reach the server on the bridge gateway (default/kubernetes gets it as endpoint) with tokens;
        # the server reaches the kubelet (logs, exec) on the node's InternalIP with the admin certificate.
        admin = certs.clients["admin"]
        return [
            f"--bind-address={netsafety.GATEWAY}",
            f"--advertise-address={netsafety.GATEWAY}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={admin.cert}",
            f"--kubelet-client-key={admin.key}",
        ]

    def _start_apiserver(
        self, certs: pki.ClusterPki, etcd: processes.ManagedProcess
    ) -> processes.ManagedProcess:
        port = self.ports["apiserver"]
        apiserver = self._start(
            "kube-apiserver",
            [
                self._bin("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
                *self._apiserver_network_flags(certs),
                f"--secure-port={port}",
                f"--cert-dir={self.run_dir / 'apiserver'}",
                f"--tls-cert-file={certs.apiserver.cert}",
                f"--tls-private-key-file={certs.apiserver.key}",
                f"--client-ca-file={certs.ca.cert}",
                "--authorization-mode=Node,RBAC",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={certs.service_account_pub}",
                f"--service-account-signing-key-file={certs.service_account_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
            ],
        )
        admin = certs.clients["admin"]
        context = processes.client_context(certs.ca.cert, admin.cert, admin.key)
        seconds = processes.wait_until(
            lambda: processes.http_ok(f"{self.server}/readyz", context=context),
            what="kube-apiserver /readyz",
            timeout=self.ready_timeout,
            watch=[etcd, apiserver],
        )
        say(f"  kube-apiserver ready in {seconds:.1f} s")
        return apiserver

    def _start_controllers(
        self, certs: pki.ClusterPki, kubeconfigs: dict[str, Path], stages: Path
    ) -> list[processes.ManagedProcess]:
        cm_kubeconfig = kubeconfigs["kube-controller-manager"]
        cm = self._start(
            "kube-controller-manager",
            [
                self._bin("kube-controller-manager"),
                f"--kubeconfig={cm_kubeconfig}",
                f"--authentication-kubeconfig={cm_kubeconfig}",
                f"--authorization-kubeconfig={cm_kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['controller-manager']}",
                f"--cert-dir={self.run_dir / 'controller-manager'}",
                "--leader-elect=false",
                # All controllers on: garbage collector, Job, and node lifecycle (which lifts the not-ready
                # taint once kwok reports a node Ready).
                "--controllers=*",
                f"--service-account-private-key-file={certs.service_account_key}",
                f"--root-ca-file={certs.ca.cert}",
                f"--cluster-signing-cert-file={certs.ca.cert}",
                f"--cluster-signing-key-file={certs.ca.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
            ],
        )
        sched_kubeconfig = kubeconfigs["kube-scheduler"]
        scheduler = self._start(
            "kube-scheduler",
            [
                self._bin("kube-scheduler"),
                f"--kubeconfig={sched_kubeconfig}",
                f"--authentication-kubeconfig={sched_kubeconfig}",
                f"--authorization-kubeconfig={sched_kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['scheduler']}",
                f"--cert-dir={self.run_dir / 'scheduler'}",
                "--leader-elect=false",
            ],
        )
        kwok = self._start(
            "kwok",
            [
                self._bin("kwok"),
                f"--kubeconfig={kubeconfigs['kwok']}",
                f"--config={stages}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={pools.KWOK_ANNOTATION[0]}={pools.KWOK_ANNOTATION[1]}",
                f"--cidr={KWOK_POD_CIDR}",
                "--node-ip=127.0.0.1",
                f"--server-address=127.0.0.1:{self.ports['kwok']}",
            ],
        )
        return [cm, scheduler, kwok]

    def _install_kuberay(
        self, crds: Path, kubeconfig: Path, watch: list[processes.ManagedProcess]
    ) -> processes.ManagedProcess:
        # The RayJob CRD is over 1 MB: too big for the last-applied annotation of a client-side apply.
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
        self.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{c}" for c in KUBERAY_CRDS)
        )
        probe = f"http://127.0.0.1:{self.ports['ray-probe']}"
        operator = self._start(
            "ray-operator",
            [
                self._bin("ray-operator"),
                f"-kubeconfig={kubeconfig}",
                "-enable-leader-election=false",
                f"-metrics-addr=127.0.0.1:{self.ports['ray-metrics']}",
                f"-health-probe-bind-address=127.0.0.1:{self.ports['ray-probe']}",
                "-log-stdout-encoder=console",
                # Real Ray dashboards are reached through the API server's service proxy: the host cannot
                # resolve the head service's cluster DNS name.
                *(["-use-kubernetes-proxy"] if self.real_node else []),
            ],
        )
        seconds = processes.wait_until(
            lambda: processes.http_ok(f"{probe}/readyz"),
            what="KubeRay operator /readyz",
            timeout=self.ready_timeout,
            watch=[*watch, operator],
        )
        say(f"  KubeRay operator ready in {seconds:.1f} s")
        return operator

    def _wait_ready(
        self, apiserver: processes.ManagedProcess, controllers: list[processes.ManagedProcess]
    ) -> None:
        insecure = processes.insecure_context()
        watch = [apiserver, *controllers]
        for name in ("controller-manager", "scheduler"):
            url = f"https://127.0.0.1:{self.ports[name]}/healthz"
            processes.wait_until(
                functools.partial(processes.http_ok, url, context=insecure),
                what=f"{name} /healthz",
                timeout=self.ready_timeout,
                watch=watch,
            )
        kwok_health = f"http://127.0.0.1:{self.ports['kwok']}/healthz"
        processes.wait_until(
            lambda: processes.http_ok(kwok_health), what="kwok /healthz", timeout=60, watch=watch
        )
        expected = {name for pool in self.node_pools for name in pool.node_names()}
        seconds = processes.wait_until(
            lambda: self._nodes_schedulable(expected),
            what=f"{len(expected)} kwok nodes Ready and untainted",
            timeout=self.ready_timeout,
            interval=0.5,
            watch=watch,
        )
        say(f"  {len(expected)} kwok nodes schedulable after {seconds:.1f} s more")
        # The ServiceAccount controller makes `default` in each namespace; clients often expect it.
        processes.wait_until(
            lambda: self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
            what="the default ServiceAccount",
            timeout=60,
            interval=0.5,
            watch=watch,
        )

    def _nodes_schedulable(self, expected: set[str]) -> bool:
        if not expected:
            return True
        result = self.kubectl("get", "nodes", "-o", "json", check=False)
        if result.returncode != 0:
            return False
        ready: set[str] = set()
        for item in json.loads(result.stdout)["items"]:
            conditions = {c["type"]: c["status"] for c in item.get("status", {}).get("conditions", [])}
            taints = {t["key"] for t in item.get("spec", {}).get("taints", []) or []}
            if conditions.get("Ready") == "True" and not any(
                t.startswith("node.kubernetes.io/") for t in taints
            ):
                ready.add(item["metadata"]["name"])
        return expected <= ready

    def _write_state(self) -> None:
        assert self.supervisor is not None
        ClusterState(
            run_dir=str(self.run_dir),
            kubeconfig=str(self.kubeconfig),
            server=self.server,
            kubectl=str(self.kubectl_path),
            supervisor_pid=os.getpid(),
            pids={c.name: c.pid for c in self.supervisor.children},
            ports=self.ports,
            ready_seconds=round(self.ready_seconds, 1),
            build_seconds=self.build_seconds,
            real_node=self.real_node,
            node_ready_seconds=round(self.node.timings.ready_seconds, 1) if self.node else 0.0,
        ).write(self.run_dir)


def run_kubectl(
    kubectl: Path | str,
    kubeconfig: Path,
    args: Sequence[str],
    *,
    check: bool = True,
    input: str | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def wait_for(check: Callable[[], Any], *, what: str, timeout: float = 60.0, interval: float = 0.5) -> Any:
    """Poll until ``check()`` returns something truthy, and return it (a helper for tests)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)
