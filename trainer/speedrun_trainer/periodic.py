"""Writing to storage in the background: what the step records and the kept logs share."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class PeriodicFlush:
    """Calls ``flush`` every ``seconds`` on a daemon thread, so storage latency never lands on the caller. A
    failed flush is logged and retried at the next; ``close`` stops the thread and flushes once more, raising
    if that last one fails."""

    def __init__(self, flush: Callable[[], None], seconds: float, name: str, what: str) -> None:
        self._flush = flush
        self._seconds = seconds
        self._what = what
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._flush()

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                self._flush()
            except Exception:
                logger.exception("could not write %s; will retry", self._what)
