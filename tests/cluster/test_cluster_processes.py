"""The harness leaves no process behind: not after a clean stop, not after Ctrl-C, not when it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import processes
from harness.cluster import PID_FILE, LocalCluster, wait_for

pytestmark = pytest.mark.cluster

TESTS_DIR = Path(__file__).resolve().parents[1]


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (a scan of the process table)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and processes.pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_all_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if processes.pid_alive(p)]
        if not alive:
            return []
        time.sleep(0.2)
    return [p for p in pids if processes.pid_alive(p)]


def test_stopping_a_cluster_stops_every_process_it_started(tmp_path: Path) -> None:
    run_dir = tmp_path / "throwaway"
    with LocalCluster(run_dir, node_pools=[], kuberay=False) as local:
        pids = list(local.pids)
        names = [c.name for c in local.supervisor.children] if local.supervisor else []
        assert names == ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
        assert all(processes.pid_alive(p) for p in pids)
        assert set(processes_mentioning(str(run_dir))) >= set(pids)
        local.kubectl("get", "--raw", "/readyz")
    assert wait_all_gone(pids) == []
    assert processes_mentioning(str(run_dir)) == []


def _start_harness_up(run_dir: Path, pools_file: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    argv = [sys.executable, "-m", "harness", "up", "--run-dir", str(run_dir), "--pools", str(pools_file)]
    argv += ["--no-kuberay", "--ready-file", str(run_dir / "ready")]
    run_dir.mkdir(parents=True)
    log = (run_dir / "up.log").open("wb")
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_ready(proc: subprocess.Popen[bytes], run_dir: Path) -> list[int]:
    def ready() -> bool:
        assert proc.poll() is None, (run_dir / "up.log").read_text()
        return (run_dir / "ready").exists()

    wait_for(ready, what="`python -m harness up` to report ready", timeout=120)
    pids = [pid for _, pid, _ in processes.recorded_children(run_dir / PID_FILE)]
    assert len(pids) == 5 and all(processes.pid_alive(p) for p in pids)
    return pids


@pytest.fixture
def one_pool(tmp_path: Path) -> Path:
    path = tmp_path / "pools.yaml"
    path.write_text("pools:\n  - {name: cpu, machineType: n2-standard-8, nodes: 1}\n")
    return path


def test_ctrl_c_on_harness_up_stops_the_whole_cluster(tmp_path: Path, one_pool: Path) -> None:
    run_dir = tmp_path / "up"
    proc = _start_harness_up(run_dir, one_pool)
    try:
        pids = _wait_ready(proc, run_dir)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert wait_all_gone(pids) == []
        assert processes_mentioning(str(run_dir)) == []
    finally:
        proc.kill()
        processes.stop_recorded(run_dir / PID_FILE)


def test_killing_the_harness_outright_still_takes_its_children_down(tmp_path: Path, one_pool: Path) -> None:
    run_dir = tmp_path / "killed"
    proc = _start_harness_up(run_dir, one_pool)
    try:
        pids = _wait_ready(proc, run_dir)
        proc.kill()  # SIGKILL: no handler runs; the kernel's parent-death signal must do the work
        proc.wait(timeout=10)
        assert wait_all_gone(pids) == []
        assert processes_mentioning(str(run_dir)) == []
    finally:
        proc.kill()
        processes.stop_recorded(run_dir / PID_FILE)


def test_harness_down_stops_a_detached_cluster(tmp_path: Path, one_pool: Path) -> None:
    run_dir = tmp_path / "detached"
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    base = [sys.executable, "-m", "harness"]
    pids: list[int] = []
    up = subprocess.run(
        [*base, "up", "--detach", "--run-dir", str(run_dir), "--pools", str(one_pool), "--no-kuberay"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    try:
        assert up.returncode == 0, up.stderr
        assert f"export KUBECONFIG={run_dir / 'kubeconfig'}" in up.stdout
        pids = [pid for _, pid, _ in processes.recorded_children(run_dir / PID_FILE)]
        assert len(pids) == 5 and all(processes.pid_alive(p) for p in pids)
        status = subprocess.run(
            [*base, "status", "--run-dir", str(run_dir)], env=env, capture_output=True, text=True
        )
        assert status.returncode == 0, status.stderr
        assert "cpu-0" in status.stdout
    finally:
        down = subprocess.run(
            [*base, "down", "--run-dir", str(run_dir)], env=env, capture_output=True, text=True
        )
    assert down.returncode == 0, down.stderr
    assert wait_all_gone(pids) == []
    assert processes_mentioning(str(run_dir)) == []
