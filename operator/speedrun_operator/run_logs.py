"""Reading back the logs a trainer kept under ``<output>/<job>/logs/`` (``contract.OutputLayout.logs``):
what ``speedrun logs`` prints, after the run or while it goes."""

from __future__ import annotations

from dataclasses import dataclass

from fsspec.core import url_to_fs

from speedrun_operator import contract


class LogsError(Exception):
    """Why no logs can be shown: one line."""


@dataclass(frozen=True)
class LogFile:
    attempt: str
    process: str
    """``driver`` or ``host<index>`` (``contract.DRIVER_LOG``, ``contract.host_log``)."""
    url: str


def logs_folder(source: str) -> str:
    """The logs folder of a results folder (``<output>/<job>``), or ``source`` when it is one already."""
    source = source.rstrip("/")
    return source if source.endswith("/logs") or source == "logs" else contract.join(source, "logs")


def attempts(logs_url: str) -> dict[str, list[LogFile]]:
    """Every attempt's log files, attempts in start order, each one's driver first and then its hosts."""
    fs, path = url_to_fs(logs_url)
    try:
        # refresh: a followed run adds files, which a listing cached by the filesystem object would miss.
        entries = fs.ls(path, detail=False, refresh=True)
    except FileNotFoundError:
        entries = []
    except (OSError, ValueError) as exc:
        raise LogsError(f"{logs_url}: cannot list: {exc}") from None
    found: dict[str, list[LogFile]] = {}
    for name in sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries):
        parsed = contract.parse_log_name(name)
        if parsed is not None:
            found.setdefault(parsed[0], []).append(LogFile(*parsed, contract.join(logs_url, name)))
    return {attempt: sorted(files, key=_process_order) for attempt, files in sorted(found.items())}


def _process_order(file: LogFile) -> tuple[int, int, str]:
    if file.process == contract.DRIVER_LOG:
        return (0, 0, "")
    index = file.process.removeprefix("host")
    return (1, int(index), "") if index.isdigit() else (2, 0, file.process)


def choose(found: dict[str, list[LogFile]], wanted: str | None, logs_url: str) -> str:
    """The attempt ``wanted`` names (its id, or its number counting from 1), else the newest."""
    ids = list(found)
    if not ids:
        raise LogsError(f"{logs_url}: no logs yet")
    if wanted is None:
        return ids[-1]
    if wanted in found:
        return wanted
    if wanted.isdigit() and 1 <= int(wanted) <= len(ids):
        return ids[int(wanted) - 1]
    listed = ", ".join(f"{number} ({attempt})" for number, attempt in enumerate(ids, 1))
    raise LogsError(f"--attempt {wanted}: no such attempt in {logs_url}; there are {listed}")


class Reader:
    """What each log file holds beyond what was read before: the trainer rewrites whole files as they grow,
    so following a file is reading past its last length."""

    def __init__(self) -> None:
        self._read: dict[str, int] = {}

    def new_text(self, file: LogFile) -> str:
        fs, path = url_to_fs(file.url)
        try:
            data: bytes = fs.cat_file(path)
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise LogsError(f"{file.url}: cannot read: {exc}") from None
        start = self._read.get(file.url, 0)
        self._read[file.url] = len(data)
        return data[start:].decode(errors="replace")
