"""What a person sees of ``speedrun run``: the hello-world in a pseudo-terminal, rendered by a terminal
emulator (pyte) as the screen would show it, and a failing run as a CI log shows it (no terminal).

Cost: one hello-world run (~1.5 min on 2 cores) and one run that fails while tokenizing (~1 min).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello-world-cpu.yaml"
SPEEDRUN = [sys.executable, "-m", "speedrun_operator.cli", "run"]
# Wide enough that the temporary paths do not wrap (the emulator cannot tell a wrapped line from two).
COLUMNS, ROWS = 240, 40
STAGES = ["starting Ray", "tokenizing", "compiling", "training", "evaluating", "writing results"]


def run_in_terminal(argv: list[str], cwd: Path, timeout: float = 900) -> tuple[int, list[str]]:
    """Run ``argv`` with a pseudo-terminal of COLUMNS x ROWS as its terminal; return its exit code and the
    lines a person saw (the screen, with what scrolled off above it)."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(ROWS)}
    process = subprocess.Popen(argv, cwd=cwd, stdin=child, stdout=child, stderr=child, env=env)
    os.close(child)
    screen = pyte.HistoryScreen(COLUMNS, ROWS, history=10_000)
    stream = pyte.ByteStream(screen)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            data = os.read(main, 65536)
        except OSError:  # the child side closed: the process is done
            break
        if not data:
            break
        stream.feed(data)
    os.close(main)
    code = process.wait(timeout=60)
    history = ["".join(line[x].data for x in range(COLUMNS)) for line in screen.history.top]
    lines = [line.rstrip() for line in [*history, *screen.display]]
    while lines and not lines[-1]:
        lines.pop()
    return code, lines


def stage_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("▸ ")]


def test_the_hello_world_in_a_terminal_shows_stages_bar_table_and_log_path(tmp_path: Path) -> None:
    output = tmp_path / "out"
    code, lines = run_in_terminal([*SPEEDRUN, str(HELLO), "--output", str(output)], cwd=tmp_path)
    screen = "\n".join(lines)
    assert code == 0, screen
    assert len(lines) < 40, screen
    # First what it will run, then the log's path.
    assert lines[0].startswith("hello-world-cpu: ") and "parameters" in lines[0] and "200 steps" in lines[0]
    log = output / "hello-world-cpu" / "speedrun-run.log"
    assert lines[1] == f"log: {log}"
    # Every stage, named, in order (Levanter also evaluates the untrained model before the first step).
    stages = stage_lines(lines)
    where = [next(i for i, line in enumerate(stages) if line.startswith(f"▸ {s}")) for s in STAGES[:4]]
    where.append(next(i for i, line in enumerate(stages) if line.startswith("▸ evaluating at step 100")))
    where.append(next(i for i, line in enumerate(stages) if line.startswith("▸ writing results")))
    assert where == sorted(where) and where[-1] == len(stages) - 1, screen
    assert re.search(r"tokenized train: [\d,]+ documents", screen)
    # The bar, finished, and the results table.
    assert any(line.startswith("hello-world-cpu ") and "200/200" in line for line in lines), screen
    assert re.search(r"eval bpb\s+│\s+\d\.\d{4}", screen), screen
    assert f"results: {output / 'hello-world-cpu' / 'speedrun_results.json'}" in lines
    assert lines[-1] == f"log: {log}"
    # None of the libraries' output reaches the screen; all of it is in the log.
    for noise in ("wandb", "levanter.", "INFO", "Ray instance", "(tokenize", "(writer"):
        assert noise not in screen, noise
    text = log.read_text()
    for library_output in (
        "levanter.main.train_lm",  # Levanter's records
        "Finished processing",  # Ray's tokenizer workers, through log_to_driver
        "wandb: ",  # W&B's offline summary
        "jax",
    ):
        assert library_output in text, library_output


def test_a_run_whose_dataset_cannot_be_read_ends_with_the_cause_and_the_log_path(tmp_path: Path) -> None:
    missing = "file:///nonexistent/speedrun/train.jsonl.gz"
    manifest = HELLO.read_text().replace("name: hello-world-cpu", "name: unreadable")
    manifest = manifest.replace(
        "    bundled: true",
        f"    tokenizer: bundled\n    trainUrls: [{missing}]\n"
        f"    validationUrls: {{bundled/kjv: [{missing}]}}",
    )
    assert missing in manifest
    (tmp_path / "unreadable.yaml").write_text(manifest)
    # No terminal, as in CI: plain lines.
    result = subprocess.run(
        [*SPEEDRUN, "unreadable.yaml", "--output", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 1
    shown = (result.stdout + result.stderr).strip().splitlines()
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", result.stdout + result.stderr), "control characters"
    assert [line.split(" ")[1] for line in stage_lines(shown)][:2] == ["starting", "tokenizing"]
    log = tmp_path / "out" / "unreadable" / "speedrun-run.log"
    cause, where = shown[-2:]
    assert cause.startswith("failed: FileNotFoundError") and "/nonexistent/speedrun/" in cause, shown
    assert where == f"log: {log.resolve()}"
    assert "Traceback" in log.read_text()
