"""The console of ``speedrun run`` without a terminal (CI logs): plain lines, a line every few percent."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from speedrun_operator.api import Progress
from speedrun_trainer.console import ConsoleProgress, failure_cause

pytestmark = pytest.mark.unit


def progress(step: int) -> Progress:
    return Progress(
        step=step, total_steps=200, display=f"{step}/200", loss=4.0, tokens_per_second=9000.0, updated_at="x"
    )


def test_without_a_terminal_training_prints_a_plain_line_every_five_percent() -> None:
    out = io.StringIO()
    bar = ConsoleProgress("hello", 200, console=Console(file=out, width=120))
    for step in range(1, 201):
        bar.report_progress(progress(step))
    bar.close()
    lines = out.getvalue().splitlines()
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", out.getvalue())
    assert lines[0] == "  training 1/200 (0%)  loss 4.000  9,000 tok/s"
    assert lines[-1] == "  training 200/200 (100%)  loss 4.000  9,000 tok/s"
    assert len(lines) == 21


def test_a_failure_is_told_by_its_innermost_cause_on_one_line() -> None:
    class TaskError(Exception):
        def __init__(self, cause: BaseException) -> None:
            super().__init__("ray::task() failed\n  Traceback ...")
            self.cause = cause

    try:
        try:
            raise FileNotFoundError("Could not find the following urls:\n  - file:///nope/train.jsonl.gz")
        except FileNotFoundError as inner:
            raise RuntimeError("training failed") from TaskError(inner)
    except RuntimeError as exc:
        assert failure_cause(exc) == (
            "FileNotFoundError: Could not find the following urls: - file:///nope/train.jsonl.gz"
        )
