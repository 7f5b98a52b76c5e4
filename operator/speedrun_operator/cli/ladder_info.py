"""``speedrun info`` on a SpeedrunLadder: each rung's cost, and the ladder's in all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from speedrun_operator.cli.errors import exit_on_manifest_error
from speedrun_operator.ladder.checks import ESTIMATED_MFU
from speedrun_operator.manifests import load_ladder
from speedrun_operator.runinfo import compute_run_info, humanize
from speedrun_operator.submissions.boards import SCALING_BOARD_MIN_HARDWARE_FLOPS

PIPED_WIDTH = 160


def show(file: Path, as_json: bool) -> None:
    with exit_on_manifest_error():
        ladder, rungs = load_ladder(file)
    infos = [(rung, compute_run_info(rung.job.spec)) for rung in rungs]
    total_model = sum(info.model_flops for _, info in infos)
    chip_hours = sum(info.estimated_seconds_at_50pct_mfu * info.num_chips for _, info in infos) / 3600
    if as_json:
        document = {
            "name": ladder.name,
            "parallelism": ladder.spec.parallelism,
            "rungs": [
                {"rung": rung.name, "job": rung.job.name, **info.model_dump(mode="json")}
                for rung, info in infos
            ],
            "totalModelFlops": total_model,
            "totalHardwareFlopsAt50pctMfu": total_model / ESTIMATED_MFU,
            "chipHoursAt50pctMfu": chip_hours,
        }
        click.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    table = Table(title=f"{ladder.name}: {ladder.spec.description}", title_justify="left")
    columns = ("rung", "SpeedrunJob", "parameters", "tokens", "model FLOPs", "hardware", "time at 50% MFU")
    for column in columns:
        left = column in ("rung", "SpeedrunJob", "hardware")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    for rung, info in infos:
        table.add_row(
            rung.name,
            rung.job.name,
            f"{info.parameters:,} ({info.parameters_display})",
            f"{info.total_tokens:,} ({humanize(info.total_tokens)})",
            f"{info.model_flops:.4e}",
            rung.job.spec.resources.describe(),
            _hours(info.estimated_seconds_at_50pct_mfu),
        )
    table.add_section()
    serial = sum(info.estimated_seconds_at_50pct_mfu for _, info in infos)
    table.add_row(
        "total",
        f"{len(infos)} rungs",
        "",
        "",
        f"{total_model:.4e}",
        f"{chip_hours:,.0f} chip-h",
        _hours(serial),
    )
    # Piped output gets room for every column; a terminal keeps its own width.
    console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
    console.print(table)
    listed = total_model / ESTIMATED_MFU
    console.print(
        f"hardware FLOPs at 50% MFU: {listed:.4e} in all; parallelism {ladder.spec.parallelism}; the scaling "
        f"board lists the ladder once a rung uses over {SCALING_BOARD_MIN_HARDWARE_FLOPS:.0e} hardware FLOPs",
        highlight=False,
    )


def _hours(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
