"""``speedrun run LADDER``: a SpeedrunLadder's rungs trained here one after another, and its fit."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from speedrun_operator import contract
from speedrun_operator.api import Results
from speedrun_operator.api.ladder import SpeedrunLadderStatus
from speedrun_operator.cli.errors import exit_on_manifest_error
from speedrun_operator.eval_sets import ValidationSets
from speedrun_operator.ladder import local
from speedrun_operator.ladder.rungs import Rung
from speedrun_operator.manifests import load_ladder
from speedrun_operator.submissions.power_law import TARGET_LABEL

PIPED_WIDTH = 160


def run_ladder(file: Path, output: str | None, verbose: bool, defaults: ValidationSets | None) -> None:
    from speedrun_trainer.console import console_session, start_ray
    from speedrun_trainer.paths import DEFAULT_LOCAL_OUTPUT
    from speedrun_trainer.runner import resolve_output, train_job

    with exit_on_manifest_error():
        ladder, rungs = load_ladder(file, default_output=DEFAULT_LOCAL_OUTPUT)
    if output is not None:
        rungs = local.with_output(ladder, rungs, output)
    # A run's session points this process's stdout and stderr at its log file for good; each rung gets the
    # terminal back, so its own session (and this ladder's table) prints there.
    sys.stdout.flush()
    terminal_fds = (os.dup(1), os.dup(2))
    terminal = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
    console = Console(file=terminal, width=None if terminal.isatty() else PIPED_WIDTH)

    def terminal_back() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(terminal_fds[0], 1)
        os.dup2(terminal_fds[1], 2)

    def train(rung: Rung) -> Results:
        terminal_back()
        console.print(f"rung {rung.name}: training {rung.job.name}", highlight=False)
        folder = resolve_output(rung.job, None)
        with console_session(rung.job, folder, verbose=verbose) as session:
            start_ray(session)
            result = train_job(rung.job, console=True, local_ray=False, default_validation=defaults)
            session.line(f"results: {result.results_url}")
        terminal_back()
        found = local.finished(rung)
        if found is None:
            click.echo(f"rung {rung.name}: no results at {result.results_url}", err=True)
            raise SystemExit(1)
        return found

    def report(status: SpeedrunLadderStatus) -> None:
        console.print(_table(ladder.name, status))

    for rung in rungs:
        if local.finished(rung) is not None:
            console.print(f"rung {rung.name}: finished already, results kept", highlight=False)
    status = local.run(ladder, rungs, train, report)
    console.print(f"{status.phase.value}: {status.message}", highlight=False)
    console.print(
        f"status: {contract.join(local.ladder_folder(ladder, rungs), local.STATUS_FILE)}", highlight=False
    )


def _table(name: str, status: SpeedrunLadderStatus) -> Table:
    table = Table(title=f"{name}: {status.rungs_done} rungs done", title_justify="left")
    for column in ("rung", "phase", "parameters", "model FLOPs", "hardware FLOPs", "eval bpb"):
        table.add_column(column, justify="left" if column in ("rung", "phase") else "right", no_wrap=True)
    for rung in status.rungs:
        table.add_row(
            rung.name,
            rung.phase,
            f"{rung.parameters:,}" if rung.parameters else "-",
            f"{rung.model_flops:.3e}" if rung.model_flops else "-",
            f"{rung.hardware_flops:.3e}" if rung.hardware_flops else "-",
            f"{rung.eval_bpb:.4f}" if rung.eval_bpb is not None else "-",
        )
    fit = status.fit
    if fit is not None:
        for label, law in (("site fit", fit.site), ("ours", fit.converged)):
            if law is not None:
                table.caption = (table.caption + "\n" if table.caption else "") + (
                    f"{label}: bpb = {law.a:.4g} x^-{law.b:.4f} + {law.c:.4f} (R² {law.r2:.3f}); "
                    f"{law.projected_bpb:.4f} at {TARGET_LABEL} FLOPs"
                )
    return table
