"""Outside a cluster: a progress bar while training and a results table at the end."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from speedrun_operator.api import Progress as JobProgress


class ConsoleProgress:
    def __init__(self, job: str, total_steps: int, console: Console | None = None) -> None:
        self._bar = Progress(
            TextColumn(f"[bold]{job}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=console,
        )
        self._task = self._bar.add_task("train", total=total_steps, detail="compiling…")
        self._bar.start()

    def report_progress(self, progress: JobProgress) -> None:
        detail = []
        if progress.loss is not None:
            detail.append(f"loss {progress.loss:.3f}")
        if progress.tokens_per_second is not None:
            detail.append(f"{progress.tokens_per_second:,.0f} tok/s")
        self._bar.update(self._task, completed=progress.step, detail="  ".join(detail))

    def close(self) -> None:
        self._bar.stop()


def print_results(info: dict[str, Any], results_url: str, console: Console | None = None) -> None:
    table = Table(title=f"{info['description']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    bpb = info["eval_bpb"]
    rows = [
        ("eval set", str(info["eval_dataset"])),
        ("eval bpb", f"{bpb:.4f}" if bpb is not None else "n/a"),
        ("steps", f"{info['steps_completed']:,} in {info['attempts']} attempt(s)"),
        ("training time", f"{info['training_time']:.1f} s (sum of step durations)"),
        ("tokens", f"{info['total_tokens']:,}"),
        ("parameters", f"{info['model_size']:,}"),
        ("model FLOPs", f"{info['model_flops']:.4e}"),
        ("hardware FLOPs", f"{info['training_hardware_flops']:.4e}"),
        ("W&B", info["wandb_run_link"] or "offline"),
        ("results", results_url),
    ]
    for key, value in rows:
        table.add_row(key, value)
    (console or Console()).print(table)
