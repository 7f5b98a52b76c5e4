"""``speedrun leaderboard PREFIX|DIR``: Marin's runs.json entries and both rankings, from results files."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from speedrun_operator.cli.errors import EXIT_INVALID
from speedrun_operator.contract import RESULTS_FILE
from speedrun_operator.runinfo import humanize
from speedrun_operator.submissions import leaderboard, page
from speedrun_operator.submissions.leaderboard import RunsJsonEntry
from speedrun_operator.submissions.ranking import (
    TARGET_LABEL,
    FitUnavailable,
    FlopsAxis,
    GroupRanking,
    rank_groups,
    rank_runs,
)

PIPED_WIDTH = 160


@click.command(name="leaderboard")
@click.argument("root", metavar="PREFIX|DIR")
@click.option("--json", "as_json", is_flag=True, help="Print the runs.json entries instead of the tables.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    help="Also write a static page with a bpb-vs-FLOPs chart to this file.",
)
@click.option(
    "--x-axis",
    type=click.Choice([axis.value for axis in FlopsAxis]),
    default=FlopsAxis.MODEL.value,
    show_default=True,
    help="The FLOPs that scaling groups are fitted against.",
)
def leaderboard_command(root: str, as_json: bool, html_file: Path | None, x_axis: str) -> None:
    """Rank every speedrun_results.json under PREFIX|DIR (gs://..., file://... or a folder).

    Runs rank by C4-EN bpb; runs sharing a parent folder form a scaling group, fitted with
    bpb = a*x^(-b) + c and ranked by the projection at 1e22 FLOPs. Exits 2 if a results file was left out.
    """
    collected = leaderboard.collect(root)
    for line in collected.problems:
        click.echo(line, err=True)
    if not collected.entries and not collected.problems:
        click.echo(f"{root}: no {RESULTS_FILE} under it", err=True)
        raise SystemExit(EXIT_INVALID)
    axis = FlopsAxis(x_axis)
    runs = rank_runs(collected.entries)
    try:
        groups = rank_groups(runs, axis)
    except FitUnavailable as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_INVALID) from None
    if as_json:
        click.echo(leaderboard.to_json(collected.entries), nl=False)
    else:
        # Piped output gets room for full run names; a terminal keeps its own width.
        console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
        console.print(_runs_table(runs))
        if groups:
            console.print(_groups_table(groups, axis))
    if html_file is not None:
        html_file.write_text(page.render(runs, groups, axis))
        click.echo(f"wrote {html_file}", err=True)
    if collected.problems:
        raise SystemExit(EXIT_INVALID)


def _runs_table(runs: list[RunsJsonEntry]) -> Table:
    table = Table(title="Runs, by C4-EN bpb (lower is better)", title_justify="left")
    for column in ("#", "run", "author", "params", "model FLOPs", "hardware FLOPs", "time (s)", "C4-EN bpb"):
        text = column in ("run", "author")
        table.add_column(column, justify="left" if text else "right", no_wrap=not text)
    for rank, run in enumerate(runs, start=1):
        bpb = run["eval_paloma_c4_en_bpb"]
        table.add_row(
            str(rank) if bpb is not None else "-",
            run["run_name"],
            run["author"]["name"],
            humanize(run["model_size"]),
            f"{run['model_flops']:.3e}",
            f"{run['training_hardware_flops']:.3e}",
            f"{run['training_time']:,.1f}",
            "-" if bpb is None else f"{bpb:.4f}",
        )
    return table


def _groups_table(groups: list[GroupRanking], axis: FlopsAxis) -> Table:
    table = Table(
        title=f"Scaling groups, by projected bpb at {TARGET_LABEL} {axis.value} (bpb = a*x^-b + c)",
        title_justify="left",
        caption="site board: the site lists a group once one of its runs used over 3e20 hardware FLOPs",
        caption_justify="left",
    )
    for column in ("#", "group", "runs", "a", "b", "c", "R²", f"bpb at {TARGET_LABEL}", "site board"):
        table.add_column(column, justify="left" if column == "group" else "right", no_wrap=column != "group")
    for rank, group in enumerate(groups, start=1):
        fit = group.fit
        numbers = (
            [f"{fit.a:.4g}", f"{fit.b:.4f}", f"{fit.c:.4f}", f"{fit.r2:.4f}", f"{group.projected_bpb:.4f}"]
            if fit is not None
            else ["-", "-", "-", "-", "no fit: needs 3 runs with a bpb"]
        )
        table.add_row(
            str(rank) if fit is not None else "-",
            group.name,
            str(len(group.runs)),
            *numbers,
            "yes" if group.on_scaling_board else "no",
        )
    return table
