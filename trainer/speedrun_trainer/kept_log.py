"""This process's whole output, kept under ``<output>/<job>/logs/`` as it goes: the log lines that outlive
the Ray cluster KubeRay deletes when a run ends.

File descriptors 1 and 2 are pointed at pipes whose reader copies every byte to where they pointed before
(Ray's own log files, the job's driver log, the terminal) and to a file in this machine's scratch space;
so our logger, Levanter's (which replaces the root logger's handlers), JAX, C libraries and Ray's task output
all land there. Object stores cannot append, so the whole file is uploaded every few seconds (a crash loses
at most that), when the process is told to stop (SIGTERM) and when the block ends; an exception leaving the
block is logged with its traceback first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import IO

from speedrun_operator import storage
from speedrun_trainer.periodic import PeriodicFlush

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0
# How long the copier waits for the pipes to go quiet before the last upload.
DRAIN_SECONDS = 0.3


class _Copier:
    """Descriptors 1 and 2 through pipes into ``log`` and on to their old targets, until ``restore``."""

    def __init__(self, log: IO[bytes]) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._last_read = time.monotonic()
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = {fd: os.dup(fd) for fd in (1, 2)}
        self._reads: dict[int, int] = {}
        for fd in (1, 2):
            read_end, write_end = os.pipe()
            os.dup2(write_end, fd)
            os.close(write_end)
            self._reads[read_end] = self._saved[fd]
        # A daemon for the process's life: children that inherited the pipes may write after restore(), and
        # must not block on a pipe nobody reads.
        threading.Thread(target=self._pump, name="kept-log-copier", daemon=True).start()

    def _pump(self) -> None:
        open_reads = list(self._reads)
        while open_reads:
            ready, _, _ = select.select(open_reads, [], [], 0.1)
            for read_end in ready:
                chunk = os.read(read_end, 65536)
                if not chunk:
                    open_reads.remove(read_end)
                    continue
                self._last_read = time.monotonic()
                with self._lock:
                    self._log.write(chunk)
                    self._log.flush()
                with contextlib.suppress(OSError):  # the old target gone: the kept log still gets it
                    _write_all(self._reads[read_end], chunk)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until what was written so far has been copied (the pipes quiet for a moment)."""
        sys.stdout.flush()
        sys.stderr.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() - self._last_read < DRAIN_SECONDS and time.monotonic() < deadline:
            time.sleep(0.05)

    def restore(self) -> None:
        self.drain()
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)

    def snapshot(self) -> bytes:
        with self._lock:
            self._log.flush()
            return Path(self._log.name).read_bytes()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Uploader:
    """The whole local file to ``url``, when it has grown since the last upload."""

    def __init__(self, copier: _Copier, url: str) -> None:
        self._copier = copier
        self._url = url
        self._uploaded = -1
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            data = self._copier.snapshot()
            if len(data) == self._uploaded:
                return
            storage.write_text_atomic(self._url, data.decode(errors="replace"))
            self._uploaded = len(data)


@contextlib.contextmanager
def kept_log(url: str, where: str, flush_seconds: float = FLUSH_SECONDS) -> Iterator[None]:
    """Keep this process's output at ``url`` while the block runs (see the module's docstring). ``where``
    names the job in the lines this adds (``namespace/name``)."""
    scratch = Path(tempfile.mkdtemp(prefix="speedrun-log-")) / url.rsplit("/", 1)[-1]
    with scratch.open("ab") as log:
        copier = _Copier(log)
        upload = _Uploader(copier, url)
        background = PeriodicFlush(upload, flush_seconds, "kept-log-uploader", f"the log to {url}")
        restore_sigterm = _on_sigterm(copier, upload, where)
        logger.info("[%s] this process's output is kept at %s", where, url)
        try:
            yield
        except Exception:
            logger.exception("[%s] failed; the traceback is kept at %s", where, url)
            raise
        finally:
            restore_sigterm()
            copier.restore()
            try:
                background.close()
            except Exception as exc:
                logger.error("[%s] could not write the log to %s: %s", where, url, exc)


def _on_sigterm(copier: _Copier, upload: _Uploader, where: str) -> Callable[[], None]:
    """On SIGTERM (a pod or a Ray job being stopped): the log is uploaded, then the handler that was there
    before runs (the default one ends the process). Returns what puts that handler back; off the main
    thread, where no handler can be set, nothing is changed."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:  # set outside Python: nothing to put back but the default
        previous = signal.SIG_DFL

    def handle(signum: int, frame: FrameType | None) -> None:
        logger.warning("[%s] received SIGTERM; keeping the log before stopping", where)
        copier.drain()
        with contextlib.suppress(Exception):
            upload()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handle)

    def put_back() -> None:
        signal.signal(signal.SIGTERM, previous)

    return put_back
