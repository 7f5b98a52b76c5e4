"""``speedrun info FILE``: what a run will cost, before it runs."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from speedrun_operator import contract
from speedrun_operator.api import SpeedrunJob
from speedrun_operator.api.model import MoeShape
from speedrun_operator.cli import ladder_info
from speedrun_operator.cli.errors import exit_on_manifest_error
from speedrun_operator.cli.model_code import CodeCounts, code_counts
from speedrun_operator.manifests import holds_ladder, load_job
from speedrun_operator.runinfo import compute_run_info, humanize
from speedrun_operator.submissions.importer import compare_with_recorded


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the run info as JSON.")
def info(file: Path, as_json: bool) -> None:
    """Print parameters, tokens, model FLOPs and peak FLOP/s of the SpeedrunJob in FILE, or of each rung of
    the SpeedrunLadder in FILE and the ladder's total."""
    if holds_ladder(file):
        ladder_info.show(file, as_json)
        return
    with exit_on_manifest_error():
        job = load_job(file)
    code = code_counts(file, job) if job.spec.model.is_custom else None
    run_info = compute_run_info(job.spec, code.counts if code is not None else None)
    if as_json:
        extra = {"codeDigest": code.digest, "codeFiles": code.files} if code is not None else {}
        click.echo(
            json.dumps(
                {"name": job.name, **run_info.model_dump(mode="json"), **extra}, indent=2, sort_keys=True
            )
        )
        return
    table = Table(title=f"{job.name}: {job.spec.description}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [
        ("model", job.spec.model.describe()),
        *(_code_rows(job, code) if code is not None else _shape_rows(job)),
        ("parameters", f"{run_info.parameters:,} ({run_info.parameters_display})"),
        ("vocab size", f"{run_info.vocab_size:,} ({job.spec.dataset.resolved_tokenizer})"),
        ("total tokens", f"{run_info.total_tokens:,} ({humanize(run_info.total_tokens)})"),
        ("FLOPs per token", f"{run_info.flops_per_token:,.0f}"),
        ("model FLOPs", f"{run_info.model_flops:.4e}"),
        ("hardware", f"{job.spec.resources.describe()} ({run_info.num_chips} chips)"),
        ("pods", contract.placement(job.spec.resources).describe()),
        ("peak FLOP/s per chip", f"{run_info.peak_flops_per_chip:.4e}"),
        ("peak FLOP/s total", f"{run_info.peak_flops:.4e}"),
        ("time at 50% MFU", _duration(run_info.estimated_seconds_at_50pct_mfu)),
        *compare_with_recorded(job, run_info),
    ]
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)


def _shape_rows(job: SpeedrunJob) -> list[tuple[str, str]]:
    shape = job.spec.model.resolve()
    return [
        ("shape", f"{shape.num_layers} layers x {shape.hidden_dim} wide, seq {shape.seq_len}"),
        *_experts_row(shape.moe),
    ]


def _code_rows(job: SpeedrunJob, code: CodeCounts) -> list[tuple[str, str]]:
    assert job.spec.model.code is not None
    return [
        ("code", job.spec.model.code.describe()),
        ("code files", ", ".join(code.files)),
        ("code digest", code.digest),
    ]


def _experts_row(moe: MoeShape | None) -> list[tuple[str, str]]:
    if moe is None:
        return []
    shared = f" + {moe.n_shared_experts} shared" if moe.n_shared_experts else ""
    return [("experts", f"{moe.num_experts_per_tok} of {moe.n_routed_experts} per token{shared}")]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
