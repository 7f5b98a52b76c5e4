"""The trainer's kept log: where it goes (the contract's layout), how it is kept as the process runs, fails or
is told to stop, and what ``speedrun logs`` prints of a run's output folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from speedrun_operator import contract
from speedrun_operator.cli import main

pytestmark = pytest.mark.unit

A1 = "20261201T220000000000Z"
A2 = "20261201T230000000000Z"


def test_the_logs_live_beside_the_results_one_file_per_attempt_and_process() -> None:
    layout = contract.OutputLayout(output="gs://bucket/runs", job="hello")
    assert layout.logs == "gs://bucket/runs/hello/logs"
    assert layout.log(A1, contract.DRIVER_LOG) == f"gs://bucket/runs/hello/logs/{A1}-driver.log"
    assert layout.log(A1, contract.host_log(3)) == f"gs://bucket/runs/hello/logs/{A1}-host3.log"
    assert contract.parse_log_name(f"{A1}-host3.log") == (A1, "host3")
    assert contract.parse_log_name(f"{A1}-driver.log") == (A1, "driver")
    for other in ("speedrun_results.json", f"{A1}.log", f"{A1}-host0.log.tmp-1"):
        assert contract.parse_log_name(other) is None


def _run_kept(tmp_path: Path, body: str, flush_seconds: float = 0.2) -> subprocess.Popen[str]:
    """A process whose output is kept at tmp_path/logs/A1-host0.log while ``body`` runs."""
    url = str(tmp_path / "logs" / f"{A1}-host0.log")
    script = textwrap.dedent(
        f"""
        import logging, sys, time
        from speedrun_trainer.kept_log import kept_log
        logging.basicConfig(level=logging.INFO)
        log = logging.getLogger("speedrun_trainer.test")
        with kept_log({url!r}, "ns/job", flush_seconds={flush_seconds}):
        """
    ) + textwrap.indent(textwrap.dedent(body), "    ")
    return subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_a_failure_is_kept_with_its_traceback_and_still_reaches_the_old_output(tmp_path: Path) -> None:
    process = _run_kept(
        tmp_path,
        """
        print("to stdout", flush=True)
        log.info("a record")
        import os; os.write(2, b"from C, on descriptor 2\\n")
        raise ValueError("Datasets cannot be empty")
        """,
    )
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    kept = (tmp_path / "logs" / f"{A1}-host0.log").read_text()
    for line in ("to stdout", "a record", "from C, on descriptor 2", "Traceback (most recent call last)"):
        assert line in kept
    assert "ValueError: Datasets cannot be empty" in kept
    assert "[ns/job] failed; the traceback is kept at" in kept
    # The copy goes on to where the descriptors pointed before: Ray's logs, the job's driver log.
    assert "to stdout" in out and "ValueError: Datasets cannot be empty" in err


def test_the_log_is_kept_as_it_goes_not_only_at_the_end(tmp_path: Path) -> None:
    process = _run_kept(tmp_path, 'print("first line", flush=True)\ntime.sleep(60)\n')
    kept = tmp_path / "logs" / f"{A1}-host0.log"
    try:
        deadline = time.monotonic() + 20
        while not (kept.exists() and "first line" in kept.read_text()):
            assert time.monotonic() < deadline, "the log was not written while the process ran"
            time.sleep(0.1)
    finally:
        process.kill()
        process.communicate()


def test_sigterm_keeps_the_last_lines_then_stops_the_process_as_before(tmp_path: Path) -> None:
    # A long flush interval: only the SIGTERM handler can have written the last line.
    process = _run_kept(tmp_path, 'print("the last line", flush=True)\ntime.sleep(60)\n', flush_seconds=3600)
    assert process.stdout is not None
    assert process.stdout.readline() == "the last line\n"
    os.kill(process.pid, signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    kept = (tmp_path / "logs" / f"{A1}-host0.log").read_text()
    assert "the last line" in kept and "received SIGTERM" in kept


def _write_logs(folder: Path) -> None:
    logs = folder / "logs"
    logs.mkdir(parents=True)
    (logs / f"{A1}-driver.log").write_text("first attempt's driver\n")
    (logs / f"{A1}-host0.log").write_text("first attempt's host\n")
    for process in ("host10", "host1", "host0", "driver"):
        (logs / f"{A2}-{process}.log").write_text(f"second attempt's {process}\n")
    (folder / "speedrun_results.json").write_text("{}")


def test_speedrun_logs_of_a_folder_prints_the_newest_attempt_every_process_labelled(tmp_path: Path) -> None:
    _write_logs(tmp_path / "hello")
    result = CliRunner().invoke(main, ["logs", str(tmp_path / "hello")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"==> attempt 2 of 2 ({A2}), driver: {tmp_path}/hello/logs/{A2}-driver.log <=="
    bodies = [line for line in lines if not line.startswith("==>")]
    assert bodies == [f"second attempt's {process}" for process in ("driver", "host0", "host1", "host10")]
    assert "first attempt" not in result.output


def test_speedrun_logs_chooses_an_attempt_by_number_or_id(tmp_path: Path) -> None:
    _write_logs(tmp_path / "hello")
    for wanted in ("1", A1):
        result = CliRunner().invoke(main, ["logs", str(tmp_path / "hello" / "logs"), "--attempt", wanted])
        assert result.exit_code == 0, result.output
        assert "first attempt's driver" in result.output and "second" not in result.output


def test_speedrun_logs_follows_a_folder_until_its_results_are_written(tmp_path: Path) -> None:
    _write_logs(tmp_path / "hello")
    result = CliRunner().invoke(main, ["logs", str(tmp_path / "hello"), "--follow", "--interval", "0.1"])
    assert result.exit_code == 0, result.output
    assert result.output.count("second attempt's driver") == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--attempt", "3"], "--attempt 3: no such attempt in"),
        ([], "no logs yet"),
    ],
)
def test_speedrun_logs_says_in_one_line_what_is_missing(tmp_path: Path, args: list[str], says: str) -> None:
    if args:
        _write_logs(tmp_path / "hello")
    result = CliRunner().invoke(main, ["logs", str(tmp_path / "hello"), *args])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and says in result.output, result.output
