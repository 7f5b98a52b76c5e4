"""Our operator at scale, next to KubeRay's own operator, on one fresh local control plane.

One run starts a cluster from the harness (tests/harness) in a temporary folder and measures two phases:

1. KubeRay alone: N RayJobs (the ones our operator builds for the A100 example, without the owner reference)
   created at once; time from each RayJob's creation to its RayCluster, and to all of the RayCluster's pods.
2. Ours: our operator started fresh, N SpeedrunJobs (the A100 example) created at once; time from each
   SpeedrunJob's creation to its RayJob, and to ``status.phase == Provisioning``. KubeRay keeps running (it
   turns our RayJobs into RayClusters, as it would in production) but is not measured here.

Every node is cordoned, so all pods stay Pending: no RayCluster ever gets ready, so KubeRay never tries to
reach a Ray dashboard (on kwok that would be an address off this machine).

Times are on the bench's clock: an object counts as created at the earliest of its create call returning and
a kubernetes watch seeing it; a milestone is reached when a watch first sees it. API requests come from the
API server's own ``/metrics``. It has no per-client request counter, but API Priority and Fairness counts the
requests it dispatches per FlowSchema; everything in the harness is in ``system:masters`` (one exempt
FlowSchema for all), so the bench gives each operator its own client certificate and user (cluster-admin by
RBAC) and a FlowSchema of its own that maps that user to the same ``exempt`` priority level: nothing is
queued or limited that was not before, and ``apiserver_flowcontrol_dispatched_requests_total`` splits by
operator. KubeRay is restarted once, with the same binary and flags, to pick up its new identity. Requests
are counted from just before the first create until KubeRay has created every pod of every job in the phase
(each RayJob status change costs our operator requests too) plus a settle time; then, separately, over an
idle period (timers, requeues). Peak memory is each process's VmHWM from /proc at the end of its phase (each
operator is fresh at the start of its phase).

    .venv/bin/python bench/operator_scale.py [--jobs 500] [--timeout 600] [--settle 5] [--idle 30]
        [--run-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import kubernetes
from kubernetes import watch

from speedrun_operator.api import GROUP, PLURAL, VERSION, SpeedrunJob
from speedrun_operator.builders import build_rayjob
from speedrun_operator.builders.labels import MANAGED_BY
from speedrun_operator.config import OperatorConfig
from speedrun_operator.manifests import load_job

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the harness lives with the tests and is not installed

from harness import pki, processes  # noqa: E402
from harness.cluster import LocalCluster  # noqa: E402

EXAMPLE = REPO / "examples" / "marin-hello-world-a100.yaml"
CRDS = sorted((REPO / "crds").glob("speedrun*.yaml"))
"""Every kind the operator watches: a missing one would cost it a retried list every few seconds."""
KUBERAY_NAMESPACE = "bench-kuberay"
SPEEDRUN_NAMESPACE = "bench-speedrun"
KUBERAY_USER = "bench-kuberay-operator"
SPEEDRUN_USER = "bench-speedrun-operator"
OPERATOR_ENV = {
    "SPEEDRUN_DEFAULT_OUTPUT": "gs://speedrun-bench/runs",  # only read when a run completes: none does here
    "SPEEDRUN_LISTEN_ADDRESS": "127.0.0.1",  # metrics (and any webhook) on loopback only
}
DISPATCHED = "apiserver_flowcontrol_dispatched_requests_total{"
CREATE_THREADS = 16


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# --- identities: a user per operator, and a FlowSchema that counts its requests -----------------------------


def client_kubeconfig(cluster: LocalCluster, user: str) -> Path:
    """A kubeconfig for ``user`` (not in system:masters), with a certificate from the cluster's CA."""
    ca = cluster.run_dir / "pki"
    directory = cluster.run_dir / "bench-users"
    directory.mkdir(exist_ok=True)
    pair = pki.KeyPair(directory / f"{user}.crt", directory / f"{user}.key")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(pair.key)]
    signer = ["-CA", str(ca / "ca.crt"), "-CAkey", str(ca / "ca.key"), "-days", "1"]
    extensions = ["-addext", "basicConstraints=CA:FALSE", "-addext", "extendedKeyUsage=clientAuth"]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-new",
            *key,
            "-out",
            str(pair.cert),
            "-subj",
            f"/CN={user}",
            *signer,
            *extensions,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return pki.write_kubeconfig(
        directory / f"{user}.kubeconfig",
        server=cluster.server,
        ca=ca / "ca.crt",
        client=pair,
        user=user,
        context="speedrun-local",
    )


def flow_schema(user: str) -> dict[str, Any]:
    """Every request of ``user`` to the exempt priority level (as system:masters), counted under its name."""
    everything = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"]}
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": user},
        "spec": {
            "matchingPrecedence": 10,
            "priorityLevelConfiguration": {"name": "exempt"},
            "rules": [
                {
                    "subjects": [{"kind": "User", "user": {"name": user}}],
                    "resourceRules": [{**everything, "clusterScope": True}],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }


def admit_users(cluster: LocalCluster, users: Sequence[str]) -> None:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "bench-operators"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in users],
    }
    items = [binding, *(flow_schema(u) for u in users)]
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )


def dispatched_requests(cluster: LocalCluster, user: str) -> float:
    """The API server's count of requests it has dispatched for ``user``'s FlowSchema."""
    metrics = cluster.kubectl("get", "--raw", "/metrics").stdout
    marker = f'flow_schema="{user}"'
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(DISPATCHED) and marker in line
    )


# --- processes ----------------------------------------------------------------------------------------------


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def child_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    return {**env, **extra}


def restart_kuberay(cluster: LocalCluster, kubeconfig: Path) -> processes.ManagedProcess:
    """KubeRay again, same binary and flags, as ``kubeconfig``'s user; returns it once ready."""
    assert cluster.supervisor is not None
    old = next(c for c in cluster.supervisor.children if c.name == "ray-operator")
    old.stop()
    argv = [f"-kubeconfig={kubeconfig}" if a.startswith("-kubeconfig=") else a for a in old.argv]
    new = cluster.supervisor.start(
        "ray-operator-bench",
        argv,
        log=cluster.run_dir / "logs" / "ray-operator-bench.log",
        env=child_env(),
        cwd=cluster.run_dir,
    )
    probe = f"http://127.0.0.1:{cluster.ports['ray-probe']}/readyz"
    processes.wait_until(lambda: processes.http_ok(probe), what="KubeRay /readyz", timeout=60, watch=[new])
    return new


def start_operator(cluster: LocalCluster, kubeconfig: Path) -> processes.ManagedProcess:
    """``speedrun operator`` as the tests run it; returns it once its metrics and liveness answer."""
    assert cluster.supervisor is not None
    metrics_port, liveness_port = processes.free_ports(2)
    liveness = f"http://127.0.0.1:{liveness_port}/healthz"
    operator = cluster.supervisor.start(
        "speedrun-operator",
        [sys.executable, "-m", "speedrun_operator.cli", "operator", "--standalone", "--liveness", liveness],
        log=cluster.run_dir / "logs" / "speedrun-operator.log",
        env=child_env(KUBECONFIG=str(kubeconfig), SPEEDRUN_METRICS_PORT=str(metrics_port), **OPERATOR_ENV),
        cwd=cluster.run_dir,
    )
    for url in (f"http://127.0.0.1:{metrics_port}/metrics", liveness):
        processes.wait_until(
            functools.partial(processes.http_ok, url), what=url, timeout=120, watch=[operator]
        )
    return operator


# --- watching -----------------------------------------------------------------------------------------------

Milestone = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Seen:
    at: float  # time.monotonic()
    metadata: dict[str, Any]


class Watcher:
    """Notes when each object of one kind (one watch) first meets each named milestone."""

    def __init__(self, what: str, list_fn: Callable[..., Any], milestones: Mapping[str, Milestone]) -> None:
        self.what = what
        self.list_fn = list_fn
        self.milestones = dict(milestones)
        self.seen: dict[str, dict[str, Seen]] = {name: {} for name in milestones}
        self.stopped = threading.Event()
        self.watch = watch.Watch()  # type: ignore[no-untyped-call]
        self.thread = threading.Thread(target=self._run, name=f"watch-{what}", daemon=True)
        self.thread.start()

    def snapshot(self, milestone: str) -> dict[str, Seen]:
        """A copy, safe to read while the watch thread adds to it."""
        return dict(self.seen[milestone])

    def stop(self) -> None:
        self.stopped.set()
        self.watch.stop()  # type: ignore[no-untyped-call]

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                for event in self.watch.stream(self.list_fn, deserialize=False):  # type: ignore[no-untyped-call]
                    self._note(event)
            except Exception as exc:
                if not self.stopped.is_set():
                    say(f"watch of {self.what} broke ({exc!r}); watching again")
                    self.watch = watch.Watch()  # type: ignore[no-untyped-call]
                    time.sleep(1)

    def _note(self, event: dict[str, Any]) -> None:
        if event["type"] not in ("ADDED", "MODIFIED"):
            return
        now = time.monotonic()
        obj = event["object"]
        name = obj["metadata"]["name"]
        for milestone, reached in self.milestones.items():
            seen = self.seen[milestone]
            if name not in seen and reached(obj):
                seen[name] = Seen(now, obj["metadata"])


def custom_watcher(api: kubernetes.client.ApiClient, group: str, plural: str, namespace: str) -> Watcher:
    custom = kubernetes.client.CustomObjectsApi(api)
    version = VERSION if group == GROUP else "v1"
    list_fn = functools.partial(custom.list_namespaced_custom_object, group, version, namespace, plural)
    return Watcher(f"{plural} in {namespace}", list_fn, {"created": lambda _: True})


def owner(seen: Seen) -> str:
    refs: list[dict[str, Any]] = seen.metadata.get("ownerReferences", [])
    return str(refs[0]["name"]) if refs else ""


class RayClusters:
    """KubeRay's work in one namespace: each RayJob's RayCluster, and its pods, as watches see them."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str, pods_each: int) -> None:
        core = kubernetes.client.CoreV1Api(api)
        self.pods_each = pods_each
        self.clusters = custom_watcher(api, "ray.io", "rayclusters", namespace)
        self.pods = Watcher(
            f"pods in {namespace}",
            functools.partial(core.list_namespaced_pod, namespace),
            {"created": lambda _: True},
        )

    def progress(self) -> str:
        seen = (len(self.clusters.snapshot("created")), len(self.pods.snapshot("created")))
        return "KubeRay: {} RayClusters, {} pods seen; {} RayJobs with all their pods".format(
            *seen, len(self.all_pods())
        )

    def created(self) -> dict[str, float]:
        """RayJob name -> when its RayCluster was first seen."""
        return {owner(s): s.at for s in self.clusters.snapshot("created").values()}

    def all_pods(self) -> dict[str, float]:
        """RayJob name -> when the last of its RayCluster's pods was first seen."""
        by_cluster: dict[str, list[float]] = {}
        for pod in self.pods.snapshot("created").values():
            name = pod.metadata.get("labels", {}).get("ray.io/cluster", "")
            by_cluster.setdefault(name, []).append(pod.at)
        rayjob_of = {name: owner(s) for name, s in self.clusters.snapshot("created").items()}
        return {
            rayjob_of[name]: max(times)
            for name, times in by_cluster.items()
            if len(times) >= self.pods_each and name in rayjob_of
        }


# --- a phase ------------------------------------------------------------------------------------------------


@dataclass
class Phase:
    """N jobs of one kind created at once.

    ``watchers[0]`` sees the jobs themselves; ``milestones()``: job -> when it reached milestone 1, and
    milestone 2; ``kuberay``: KubeRay's work on them. Once KubeRay has created every pod of every job, the
    burst is absorbed: the request count ends there.
    """

    namespace: str
    group: str
    plural: str
    manifests: list[dict[str, Any]]
    user: str
    pid: int
    watchers: list[Watcher]
    kuberay: RayClusters
    milestones: Callable[[], tuple[dict[str, float], dict[str, float]]]
    posted: dict[str, float] = field(default_factory=dict)

    def created(self) -> dict[str, float]:
        observed = {n: s.at for n, s in self.watchers[0].snapshot("created").items()}
        return {n: min(t, observed.get(n, t)) for n, t in self.posted.items()}

    def reached(self) -> tuple[int, int]:
        first, second = self.milestones()
        return len(first), len(second)


@dataclass(frozen=True)
class Result:
    jobs: int
    first: list[float]
    second: list[float]
    seconds: float  # creation of the first job -> last milestone of the last one
    burst_requests: float  # per job, first create -> settled + settle time
    idle_requests: float  # per job and minute, after that
    peak_rss_mib: float


def create_all(api: kubernetes.client.ApiClient, phase: Phase) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)
    version = VERSION if phase.group == GROUP else "v1"

    def create(manifest: dict[str, Any]) -> None:
        custom.create_namespaced_custom_object(phase.group, version, phase.namespace, phase.plural, manifest)
        phase.posted[manifest["metadata"]["name"]] = time.monotonic()

    with ThreadPoolExecutor(CREATE_THREADS) as pool:
        list(pool.map(create, phase.manifests))


def wait_until(done: Callable[[], bool], progress: Callable[[], str], deadline: float) -> bool:
    last_report = time.monotonic()
    while time.monotonic() < deadline:
        if done():
            return True
        if time.monotonic() - last_report > 15:
            say(f"  {progress()}")
            last_report = time.monotonic()
        time.sleep(0.5)
    say(f"  timed out: {progress()}")
    return False


def durations(created: Mapping[str, float], reached: Mapping[str, float]) -> list[float]:
    return sorted(reached[name] - t for name, t in created.items() if name in reached)


def measure(cluster: LocalCluster, api: kubernetes.client.ApiClient, phase: Phase, args: Args) -> Result:
    jobs = len(phase.manifests)
    cluster.kubectl("create", "namespace", phase.namespace)
    before = dispatched_requests(cluster, phase.user)
    started = time.monotonic()
    create_all(api, phase)
    say(f"  {jobs} {phase.plural} created in {time.monotonic() - started:.1f} s")
    deadline = started + args.timeout

    def progress() -> str:
        first, second = phase.reached()
        return f"{first}/{jobs} at milestone 1, {second}/{jobs} at milestone 2"

    wait_until(lambda: min(phase.reached()) >= jobs, progress, deadline)
    seconds = time.monotonic() - started
    wait_until(lambda: len(phase.kuberay.all_pods()) >= jobs, phase.kuberay.progress, deadline)
    time.sleep(args.settle)
    burst = dispatched_requests(cluster, phase.user)
    time.sleep(args.idle)
    idle = dispatched_requests(cluster, phase.user) - burst
    first, second = phase.milestones()
    created = phase.created()
    return Result(
        jobs,
        durations(created, first),
        durations(created, second),
        seconds,
        (burst - before) / jobs,
        idle / jobs / (args.idle / 60),
        peak_rss_mib(phase.pid),
    )


def run_phase(cluster: LocalCluster, api: kubernetes.client.ApiClient, phase: Phase, args: Args) -> Result:
    try:
        return measure(cluster, api, phase, args)
    finally:
        for watcher in [*phase.watchers, phase.kuberay.clusters, phase.kuberay.pods]:
            watcher.stop()


# --- the two phases -----------------------------------------------------------------------------------------


def srj_manifest(name: str) -> dict[str, Any]:
    manifest = load_job(EXAMPLE).manifest()
    manifest["metadata"] = {"name": name}
    return manifest


def direct_rayjob(name: str, namespace: str, config: OperatorConfig) -> dict[str, Any]:
    """The RayJob our operator would build for ``name``, minus the parts that tie it to a SpeedrunJob."""
    manifest = srj_manifest(name)
    manifest["metadata"]["namespace"] = namespace
    rayjob = build_rayjob(SpeedrunJob.model_validate(manifest), "bench", config)
    del rayjob["metadata"]["ownerReferences"]
    del rayjob["metadata"]["labels"][MANAGED_BY]  # our operator watches RayJobs with this label
    return rayjob


def pods_per_cluster(rayjob: dict[str, Any]) -> int:
    workers = rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    return 1 + sum(int(group.get("replicas", 1)) for group in workers)


def kuberay_phase(api: kubernetes.client.ApiClient, jobs: int, pid: int) -> Phase:
    config = OperatorConfig.from_env(OPERATOR_ENV)
    manifests = [direct_rayjob(f"bench-{i:04d}", KUBERAY_NAMESPACE, config) for i in range(jobs)]
    rayjobs = custom_watcher(api, "ray.io", "rayjobs", KUBERAY_NAMESPACE)
    kuberay = RayClusters(api, KUBERAY_NAMESPACE, pods_per_cluster(manifests[0]))
    return Phase(
        KUBERAY_NAMESPACE,
        "ray.io",
        "rayjobs",
        manifests,
        KUBERAY_USER,
        pid,
        [rayjobs],
        kuberay,
        lambda: (kuberay.created(), kuberay.all_pods()),
    )


def speedrun_phase(api: kubernetes.client.ApiClient, jobs: int, pid: int) -> Phase:
    config = OperatorConfig.from_env(OPERATOR_ENV)
    manifests = [srj_manifest(f"bench-{i:04d}") for i in range(jobs)]
    custom = kubernetes.client.CustomObjectsApi(api)
    srjs = Watcher(
        f"{PLURAL} in {SPEEDRUN_NAMESPACE}",
        functools.partial(custom.list_namespaced_custom_object, GROUP, VERSION, SPEEDRUN_NAMESPACE, PLURAL),
        {
            "created": lambda _: True,
            "provisioning": lambda o: (o.get("status") or {}).get("phase") == "Provisioning",
        },
    )
    rayjobs = custom_watcher(api, "ray.io", "rayjobs", SPEEDRUN_NAMESPACE)
    kuberay = RayClusters(
        api, SPEEDRUN_NAMESPACE, pods_per_cluster(direct_rayjob("bench", SPEEDRUN_NAMESPACE, config))
    )

    def milestones() -> tuple[dict[str, float], dict[str, float]]:
        first = {owner(s): s.at for s in rayjobs.snapshot("created").values()}
        return first, {name: s.at for name, s in srjs.snapshot("provisioning").items()}

    return Phase(
        SPEEDRUN_NAMESPACE,
        GROUP,
        PLURAL,
        manifests,
        SPEEDRUN_USER,
        pid,
        [srjs, rayjobs],
        kuberay,
        milestones,
    )


# --- the run ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Args:
    jobs: int
    timeout: float
    settle: float
    idle: float
    run_dir: Path | None


def prepare(cluster: LocalCluster) -> None:
    """Our CRDs, the two operators' users, and every node cordoned (pods stay Pending)."""
    for crd in CRDS:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/speedrunjobs.speedrun.marin.community"
    )
    admit_users(cluster, [KUBERAY_USER, SPEEDRUN_USER])
    cluster.kubectl("cordon", "--selector=cloud.google.com/gke-nodepool")


def api_client(cluster: LocalCluster) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        str(cluster.kubeconfig), client_configuration=configuration
    )
    configuration.connection_pool_maxsize = CREATE_THREADS + 8
    return kubernetes.client.ApiClient(configuration)


def run(cluster: LocalCluster, args: Args) -> tuple[Result, Result]:
    prepare(cluster)
    api = api_client(cluster)
    kuberay = restart_kuberay(cluster, client_kubeconfig(cluster, KUBERAY_USER))
    say(f"KubeRay alone: {args.jobs} RayJobs")
    theirs = run_phase(cluster, api, kuberay_phase(api, args.jobs, kuberay.pid), args)
    say(f"deleting namespace {KUBERAY_NAMESPACE}")
    deleted = cluster.kubectl(
        "delete", "namespace", KUBERAY_NAMESPACE, f"--timeout={args.timeout:.0f}s", check=False, timeout=900
    )
    if deleted.returncode != 0:
        say(f"  not deleted yet, going on ({deleted.stderr.strip()}): KubeRay is still busy with it")
    operator = start_operator(cluster, client_kubeconfig(cluster, SPEEDRUN_USER))
    say(f"speedrun operator: {args.jobs} SpeedrunJobs")
    ours = run_phase(cluster, api, speedrun_phase(api, args.jobs, operator.pid), args)
    return ours, theirs


# --- the report ---------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float, jobs: int) -> float:
    """Nearest rank over all ``jobs``; a job that never got there counts as infinitely late."""
    rank = math.ceil(p / 100 * jobs)
    return values[rank - 1] if rank <= len(values) else math.inf


def table(ours: Result, theirs: Result) -> str:
    rows: list[tuple[str, float, float, str]] = []
    for label, mine, kuberay in (
        ("child created", ours.first, theirs.first),
        ("ready", ours.second, theirs.second),
    ):
        for p in (50, 99):
            rows.append(
                (f"{label} p{p}", percentile(mine, p, ours.jobs), percentile(kuberay, p, theirs.jobs), "s")
            )
    rows.append(("API requests per job", ours.burst_requests, theirs.burst_requests, ""))
    rows.append(("idle requests/job/min", ours.idle_requests, theirs.idle_requests, ""))
    rows.append(("peak RSS", ours.peak_rss_mib, theirs.peak_rss_mib, "MiB"))
    rows.append(("all at last milestone", ours.seconds, theirs.seconds, "s"))
    lines = [
        f"{'':24} {'speedrun-operator':>18} {'KubeRay alone':>15} {'ours/KubeRay':>13}",
        f"{'jobs at last milestone':24} {f'{len(ours.second)}/{ours.jobs}':>18} "
        f"{f'{len(theirs.second)}/{theirs.jobs}':>15}",
    ]
    for label, a, b, unit in rows:
        ratio = f"{a / b:.2f}" if b and math.isfinite(a) and math.isfinite(b) else "n/a"
        lines.append(f"{label:24} {f'{a:.2f} {unit}':>18} {f'{b:.2f} {unit}':>15} {ratio:>13}")
    lines.append("")
    lines.extend(targets(ours, theirs))
    return "\n".join(lines)


def targets(ours: Result, theirs: Result) -> list[str]:
    """What we hold ourselves to at a burst: each line says whether this run met it."""
    p99_ours, p99_theirs = percentile(ours.first, 99, ours.jobs), percentile(theirs.first, 99, theirs.jobs)
    checks = [
        ("API requests per job <= KubeRay's", ours.burst_requests, theirs.burst_requests),
        ("child created p99 <= half of KubeRay's", p99_ours, p99_theirs / 2),
        ("idle requests/job/min <= 0.2", ours.idle_requests, 0.2),
        ("peak RSS <= KubeRay's", ours.peak_rss_mib, theirs.peak_rss_mib),
    ]
    return [
        f"target: {label:42} {'met' if math.isfinite(mine) and mine <= bound else 'MISSED'} "
        f"({mine:.2f} vs {bound:.2f})"
        for label, mine, bound in checks
    ]


LEGEND = """\
child created: ours = SpeedrunJob -> its RayJob; KubeRay = RayJob -> its RayCluster.
ready:         ours = SpeedrunJob -> status.phase Provisioning; KubeRay = RayJob -> all its RayCluster's pods.
API requests:  the API server's APF dispatch count for each operator's user, from the first create until
               KubeRay has created every pod of every job (+ settle); idle: the same count over the next
               --idle seconds, per job and minute."""


def parse_args(argv: Sequence[str] | None) -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=500, help="jobs created at once in each phase")
    parser.add_argument("--timeout", type=float, default=600, help="seconds each phase may take")
    parser.add_argument("--settle", type=float, default=5, help="seconds counted after the burst")
    parser.add_argument("--idle", type=float, default=30, help="seconds of idle request rate after that")
    parser.add_argument(
        "--run-dir", type=Path, help="keep the cluster's folder (logs) here; default: a temp dir"
    )
    ns = parser.parse_args(argv)
    return Args(ns.jobs, ns.timeout, ns.settle, ns.idle, ns.run_dir)


def exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C: the cluster stops and the temporary folder goes."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_on_signal)
    with contextlib.ExitStack() as stack:
        temporary = tempfile.TemporaryDirectory(prefix="operator-scale-")
        run_dir = args.run_dir or Path(stack.enter_context(temporary))
        cluster = stack.enter_context(LocalCluster(run_dir))
        ours, theirs = run(cluster, args)
    print()
    print(table(ours, theirs))
    print(LEGEND)
    complete = len(ours.second) == ours.jobs and len(theirs.second) == theirs.jobs
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
