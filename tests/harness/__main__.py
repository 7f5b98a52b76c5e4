"""``python -m harness up|down|status|build`` (run with ``tests/`` on PYTHONPATH; see ``make cluster-up``).

``up`` starts a cluster in a run directory (default ``<cache>/clusters/dev``) and stays in the foreground
until Ctrl-C; ``up --detach`` starts the same foreground process in the background, waits until the cluster
is ready, prints the ``export KUBECONFIG=...`` line and returns. ``down`` stops the cluster of a run
directory from any process; ``status`` shows it. ``build`` only builds (or finds) the binaries.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness import build, processes
from harness.build import say
from harness.cluster import PID_FILE, STATE_FILE, ClusterState, run_kubectl


def default_run_dir() -> Path:
    return build.cache_dir() / "clusters" / "dev"


def _running_state(run_dir: Path) -> ClusterState | None:
    state = ClusterState.read(run_dir)
    if state is not None and processes.pid_alive(state.supervisor_pid):
        return state
    return None


def _export_line(state: ClusterState) -> str:
    return f"export KUBECONFIG={state.kubeconfig}"


def cmd_up(
    run_dir: Path,
    *,
    detach: bool,
    ready_file: Path | None,
    pools_file: Path | None,
    kuberay: bool,
    real_node: bool = False,
) -> int:
    existing = _running_state(run_dir)
    if existing is not None:
        say(f"a cluster is already running in {run_dir} (pid {existing.supervisor_pid})")
        print(_export_line(existing))
        return 0
    if detach:
        return _up_detached(run_dir, pools_file=pools_file, kuberay=kuberay, real_node=real_node)

    from harness import pools  # imports pyyaml: only needed when starting
    from harness.cluster import LocalCluster

    # Leftovers of a supervisor that died hard (their own children die with it, but be sure).
    processes.stop_recorded(run_dir / PID_FILE)
    stop = threading.Event()
    ready = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if not ready.is_set():
            raise KeyboardInterrupt  # still starting: abandon the start, the `finally` below stops what ran
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    node_pools = pools.load_pools(pools_file) if pools_file else None
    cluster = LocalCluster(run_dir, node_pools=node_pools, kuberay=kuberay, real_node=real_node)
    try:
        cluster.start()
        ready.set()
        state = ClusterState.read(run_dir)
        assert state is not None
        say("recorded cold build times: " + build.format_build_times(state.build_seconds))
        say(f"warm start (binaries cached → cluster ready): {state.ready_seconds:.1f} s")
        print(_export_line(state), flush=True)
        if ready_file is not None:
            ready_file.write_text(_export_line(state) + "\n")
        say("cluster running; Ctrl-C (or `python -m harness down`) stops it")
        children = cluster.supervisor.children if cluster.supervisor else []
        while not stop.wait(1.0):
            dead = [c.name for c in children if not c.running()]
            if dead:
                say(f"component(s) exited: {', '.join(dead)}; stopping the cluster")
                return 1
        return 0
    finally:
        say("stopping the cluster")
        cluster.stop()
        say("stopped")


def _up_detached(run_dir: Path, *, pools_file: Path | None, kuberay: bool, real_node: bool) -> int:
    run_dir.mkdir(parents=True, exist_ok=True)
    ready_file = run_dir / "ready"
    ready_file.unlink(missing_ok=True)
    log = run_dir / "harness.log"
    shown = len(log.read_text(errors="replace").splitlines()) if log.exists() else 0
    argv = [sys.executable, "-m", "harness", "up", "--run-dir", str(run_dir), "--ready-file", str(ready_file)]
    if pools_file is not None:
        argv += ["--pools", str(pools_file.resolve())]
    if not kuberay:
        argv.append("--no-kuberay")
    if real_node:
        argv.append("--real-node")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    say(f"starting the cluster in the background (pid {proc.pid}, log {log})")
    while not ready_file.exists():
        shown = _echo_new_lines(log, shown)
        if proc.poll() is not None:
            _echo_new_lines(log, shown)
            say(f"the cluster failed to start (exit {proc.returncode}); see {log}")
            return 1
        time.sleep(0.5)
    _echo_new_lines(log, shown)
    state = ClusterState.read(run_dir)
    if state is None:
        say(f"the cluster reported ready but wrote no {STATE_FILE}")
        return 1
    say(f"cluster running in the background; stop it with `make cluster-down` (pid {proc.pid})")
    print(_export_line(state))
    return 0


def _echo_new_lines(log: Path, shown: int) -> int:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return shown
    for line in lines[shown:]:
        if not line.startswith("export KUBECONFIG="):
            print(line, file=sys.stderr, flush=True)
    return len(lines)


def cmd_down(run_dir: Path) -> int:
    state = ClusterState.read(run_dir)
    if state is not None and processes.pid_alive(state.supervisor_pid):
        say(f"stopping the cluster supervisor (pid {state.supervisor_pid})")
        os.kill(state.supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while processes.pid_alive(state.supervisor_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    leftovers = processes.stop_recorded(run_dir / PID_FILE)
    if leftovers:
        say(f"stopped leftover processes: {', '.join(leftovers)}")
    (run_dir / STATE_FILE).unlink(missing_ok=True)
    alive = [n for n, p, t in processes.recorded_children(run_dir / PID_FILE) if processes.pid_alive(p, t)]
    if alive:
        say(f"still running: {', '.join(alive)}")
        return 1
    from harness.node import sweep_if_unowned

    swept = sweep_if_unowned()
    if swept:
        say(f"removed what a real node had left: {', '.join(swept)}")
    say(f"no cluster running in {run_dir}")
    return 0


def cmd_status(run_dir: Path) -> int:
    say("recorded cold build times: " + build.format_build_times(build.cold_build_seconds()))
    state = _running_state(run_dir)
    if state is None:
        say(f"no cluster running in {run_dir}")
        return 1
    say(f"cluster in {run_dir}, supervisor pid {state.supervisor_pid}, ready in {state.ready_seconds:.1f} s")
    for name, pid in state.pids.items():
        say(f"  {name:<24} pid {pid:<8} {'running' if processes.pid_alive(pid) else 'DEAD'}")
    nodes = run_kubectl(
        state.kubectl, Path(state.kubeconfig), ["get", "nodes", "-L", "cloud.google.com/gke-nodepool"]
    )
    print(nodes.stdout or nodes.stderr, end="")
    print(_export_line(state))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness", description=__doc__.splitlines()[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a cluster (foreground until Ctrl-C, or --detach)")
    up.add_argument("--detach", action="store_true", help="return once ready; stop later with `down`")
    up.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    up.add_argument("--pools", type=Path, help="node pools file (default: tests/harness/pools.yaml)")
    up.add_argument("--no-kuberay", action="store_true", help="skip KubeRay's CRDs and operator")
    up.add_argument(
        "--real-node",
        action="store_true",
        default=os.environ.get("SPEEDRUN_REAL_NODE") == "1",
        help="also a kubelet node (pool `local`) running the project's images (SPEEDRUN_REAL_NODE=1)",
    )
    sub.add_parser("down", help="stop the cluster")
    sub.add_parser("status", help="show the cluster")
    build_cmd = sub.add_parser("build", help="build (or find) the binaries only")
    build_cmd.add_argument("names", nargs="*", help="binaries to build (all by default)")
    for command in sub.choices.values():
        command.add_argument("--run-dir", type=Path, default=None, help="default: <cache>/clusters/dev")
    args = parser.parse_args(argv)
    run_dir = (args.run_dir or default_run_dir()).resolve()
    if args.command == "up":
        return cmd_up(
            run_dir,
            detach=args.detach,
            ready_file=args.ready_file,
            pools_file=args.pools,
            kuberay=not args.no_kuberay,
            real_node=args.real_node,
        )
    if args.command == "down":
        return cmd_down(run_dir)
    if args.command == "status":
        return cmd_status(run_dir)
    return build.main(args.names)


if __name__ == "__main__":
    raise SystemExit(main())
