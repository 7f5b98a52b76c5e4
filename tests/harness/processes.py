"""Child processes of the harness: logs, free ports, readiness waits and a clean stop.

Each child runs in its own process group (so its own children go with it), stdout and stderr in a log file.
The pids are recorded in a file, so that another process (``python -m harness down``) can stop them too; a
recorded pid is only signalled while it still belongs to the process that was started (same start time in
/proc), never a later process that reused the number. A :class:`Supervisor` stops its children at interpreter
exit and on SIGTERM/SIGHUP; children also get SIGKILL from the kernel if the process that started them dies
(PR_SET_PDEATHSIG), so even a `kill -9` of the test runner leaves no strays.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from harness import netsafety

PR_SET_PDEATHSIG = 1


class ProcessError(RuntimeError):
    pass


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together, so they differ)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: own process group, SIGKILL when the parent thread dies."""
    os.setpgid(0, 0)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def proc_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited already
        return None
    return int(fields[19])


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """Whether ``pid`` is a live (non-zombie) process, and the same one if ``start_time`` is given."""
    current = proc_start_time(pid)
    return current is not None and (start_time is None or current == start_time)


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes]
    start_time: int | None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "".join(self.log.read_text(errors="replace").splitlines(keepends=True)[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the process group, then SIGKILL after ``timeout`` seconds."""
        if self.popen.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        # The leader may be gone while something it started still holds the group.
        _signal_group(self.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Supervisor:
    """Starts children, records them in ``pidfile`` and stops them all (in reverse order) exactly once."""

    def __init__(self, pidfile: Path, *, die_with_parent: bool = True) -> None:
        self.pidfile = pidfile
        self.die_with_parent = die_with_parent
        self.children: list[ManagedProcess] = []
        self._lock = threading.RLock()  # a signal may arrive while stop_all holds it
        self._stopped = False
        self._previous_handlers: dict[int, object] = {}
        atexit.register(self.stop_all)
        self._install_signal_handlers()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous = signal.getsignal(sig)
            if previous in (signal.SIG_DFL, None):
                self._previous_handlers[sig] = previous
                signal.signal(sig, self._on_signal)

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in list(self._previous_handlers):
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, signal.SIG_DFL)
            del self._previous_handlers[sig]

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_all()
        self._restore_signal_handlers()
        os.kill(os.getpid(), signum)  # now with the default action

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        if self._stopped:
            raise ProcessError("supervisor already stopped")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(f"$ {' '.join(argv)}\n".encode())
            out.flush()
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                preexec_fn=_die_with_parent if self.die_with_parent else os.setpgrp,
            )
        child = ManagedProcess(name, list(argv), log, popen, proc_start_time(popen.pid))
        with self._lock:
            self.children.append(child)
            self._write_pidfile()
        return child

    def _write_pidfile(self) -> None:
        records = [{"name": c.name, "pid": c.pid, "start_time": c.start_time} for c in self.children]
        tmp = self.pidfile.with_suffix(".tmp")
        tmp.write_text(json.dumps({"supervisor": os.getpid(), "children": records}, indent=2) + "\n")
        os.replace(tmp, self.pidfile)

    @property
    def pids(self) -> list[int]:
        return [c.pid for c in self.children]

    def stop_all(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            for child in reversed(self.children):
                child.stop(timeout)
        self._restore_signal_handlers()
        atexit.unregister(self.stop_all)


def recorded_children(pidfile: Path) -> list[tuple[str, int, int | None]]:
    """(name, pid, start time) of each child recorded in ``pidfile``."""
    try:
        data = json.loads(pidfile.read_text())
    except (OSError, ValueError):
        return []
    return [(r["name"], int(r["pid"]), r.get("start_time")) for r in data.get("children", [])]


def stop_recorded(pidfile: Path, timeout: float = 10.0) -> list[str]:
    """Stop the children recorded in ``pidfile`` from any process; returns the names it had to stop."""
    stopped: list[str] = []
    live = [(n, p, t) for n, p, t in recorded_children(pidfile) if pid_alive(p, t)]
    for name, pid, _ in reversed(live):
        _signal_group(pid, signal.SIGTERM)
        stopped.append(name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p, t) for _, p, t in live):
        time.sleep(0.1)
    for _, pid, start in live:
        if pid_alive(pid, start):
            _signal_group(pid, signal.SIGKILL)
    return stopped


# --- readiness ---------------------------------------------------------------------------------------------


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    interval: float = 0.2,
    watch: Sequence[ManagedProcess] = (),
) -> float:
    """Poll ``check`` until it is true; fail early when a watched process exits. Returns the seconds taken."""
    started = time.monotonic()
    deadline = started + timeout
    last_error: Exception | None = None
    while True:
        for proc in watch:
            if not proc.running():
                raise ProcessError(
                    f"{proc.name} exited with {proc.popen.returncode} while waiting for {what}; "
                    f"last lines of {proc.log}:\n{proc.log_tail()}"
                )
        try:
            if check():
                return time.monotonic() - started
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise ProcessError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


# Loopback, and the gateway of the real node's bridge (an address of this machine the harness creates).
LOCAL_HOSTS = ("127.0.0.1", netsafety.GATEWAY)


def http_ok(url: str, *, context: ssl.SSLContext | None = None, expect: str | None = None) -> bool:
    """Whether GET ``url`` (which must be on this machine) answers 200, and contains ``expect`` if given."""
    allowed = tuple(f"{scheme}://{host}:" for scheme in ("http", "https") for host in LOCAL_HOSTS)
    if not url.startswith(allowed):
        raise ValueError(f"the harness only talks to loopback and its own bridge, not {url}")
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            body = response.read().decode(errors="replace")
            return bool(response.status == 200) and (expect is None or expect in body)
    except (urllib.error.URLError, OSError):
        return False


def insecure_context() -> ssl.SSLContext:
    """For the self-signed health endpoints of the controller-manager and scheduler (loopback only)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def client_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context


@contextlib.contextmanager
def supervised(pidfile: Path) -> Iterator[Supervisor]:
    supervisor = Supervisor(pidfile)
    try:
        yield supervisor
    finally:
        supervisor.stop_all()
