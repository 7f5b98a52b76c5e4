"""The harness's child processes: own process groups, recorded pids, and a stop that leaves nothing behind."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from harness import processes

pytestmark = pytest.mark.unit

# A child that starts a grandchild of its own: stopping the child must take the grandchild too.
FAMILY = ["sh", "-c", "sleep 300 & echo $! > grandchild.pid; wait"]


def _grandchild(tmp_path: Path) -> int:
    pidfile = tmp_path / "grandchild.pid"
    processes.wait_until(
        lambda: pidfile.exists() and pidfile.read_text().strip() != "", what="grandchild", timeout=10
    )
    return int(pidfile.read_text())


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while processes.pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_free_ports_are_distinct_and_bindable_on_loopback() -> None:
    ports = processes.free_ports(8)
    assert len(set(ports)) == 8
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_stop_all_stops_children_and_their_children(tmp_path: Path) -> None:
    supervisor = processes.Supervisor(tmp_path / "pids.json")
    child = supervisor.start("family", FAMILY, log=tmp_path / "family.log", cwd=tmp_path)
    grandchild = _grandchild(tmp_path)
    assert processes.pid_alive(child.pid) and processes.pid_alive(grandchild)
    assert [name for name, _, _ in processes.recorded_children(tmp_path / "pids.json")] == ["family"]

    supervisor.stop_all(timeout=5)

    assert _gone(child.pid) and _gone(grandchild)
    supervisor.stop_all()  # a second stop is harmless


def test_another_process_can_stop_what_a_pid_file_records(tmp_path: Path) -> None:
    supervisor = processes.Supervisor(tmp_path / "pids.json")
    child = supervisor.start("family", FAMILY, log=tmp_path / "family.log", cwd=tmp_path)
    grandchild = _grandchild(tmp_path)

    assert processes.stop_recorded(tmp_path / "pids.json", timeout=5) == ["family"]

    assert _gone(child.pid) and _gone(grandchild)
    child.popen.wait(timeout=5)
    supervisor.stop_all()


def test_a_reused_pid_is_not_signalled(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids.json"
    supervisor = processes.Supervisor(pidfile)
    child = supervisor.start("sleeper", ["sleep", "300"], log=tmp_path / "sleeper.log")
    start = processes.proc_start_time(child.pid)
    assert start is not None
    assert processes.pid_alive(child.pid, start)
    # Same number, other start time: that is some other process now, and must be left alone.
    assert not processes.pid_alive(child.pid, start + 1)
    pidfile.write_text(
        f'{{"supervisor": 1, "children": [{{"name": "x", "pid": {child.pid}, "start_time": {start + 1}}}]}}'
    )
    assert processes.stop_recorded(pidfile, timeout=1) == []
    assert processes.pid_alive(child.pid)
    supervisor.stop_all(timeout=5)
    assert _gone(child.pid)


def test_waiting_fails_fast_when_the_process_dies(tmp_path: Path) -> None:
    supervisor = processes.Supervisor(tmp_path / "pids.json")
    try:
        child = supervisor.start("crasher", ["sh", "-c", "echo boom; exit 3"], log=tmp_path / "crasher.log")
        with pytest.raises(processes.ProcessError, match="crasher exited with 3") as error:
            processes.wait_until(lambda: False, what="never", timeout=30, watch=[child])
        assert "boom" in str(error.value)
    finally:
        supervisor.stop_all()


def test_the_harness_talks_only_to_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        processes.http_ok("http://10.250.0.5:8265/api/version")
