"""``speedrun leaderboard PREFIX|DIR|RUNS_JSON``: the speedrun site's boards, with the site's own numbers."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click
import fsspec
from rich.console import Console
from rich.table import Table

from speedrun_operator.cli.errors import EXIT_INVALID
from speedrun_operator.contract import RESULTS_FILE
from speedrun_operator.runinfo import humanize
from speedrun_operator.submissions import boards_json, leaderboard, page
from speedrun_operator.submissions.boards import (
    Boards,
    FlopsAxis,
    RunBoard,
    ScalingBoard,
    ScalingGroup,
    build_boards,
)
from speedrun_operator.submissions.power_law import TARGET_FLOPS, TARGET_LABEL, FitUnavailable
from speedrun_operator.submissions.site_tracks import SITE_TRACKS, InvalidTracks, Track, parse_tracks

PIPED_WIDTH = 160


@click.command(name="leaderboard")
@click.argument("root", metavar="PREFIX|DIR|RUNS_JSON")
@click.option("--json", "as_json", is_flag=True, help="Print every board, the entries and what was left out.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    help="Also write a static page with the chart and every board to this file.",
)
@click.option(
    "--runs-json",
    "runs_json_file",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    help="Also write Marin's runs.json (the site's data file) to this file.",
)
@click.option(
    "--tracks",
    "tracks_url",
    metavar="FILE|URL",
    help="The site's tracks.json to build the boards from. Default: the site's own tracks.",
)
@click.option(
    "--x-axis",
    type=click.Choice([axis.value for axis in FlopsAxis]),
    default=FlopsAxis.MODEL.value,
    show_default=True,
    help="The FLOPs that scaling groups are fitted against (the site's toggle).",
)
def leaderboard_command(
    root: str,
    as_json: bool,
    html_file: Path | None,
    runs_json_file: Path | None,
    tracks_url: str | None,
    x_axis: str,
) -> None:
    """The site's boards over every speedrun_results.json under PREFIX|DIR (gs://..., a folder), or over a
    runs.json.

    Boards: all runs; each target-bpb track of tracks.json; the scaling board (groups by folder, fitted with
    the site's solver, listed once a run used over 3e20 hardware FLOPs, ranked at 1e22 FLOPs, with our
    converged fit beside); each run's difference from the AdamW baseline. A results file or run that would
    break the site is left out with one line naming it and the key; then the exit code is 2.
    """
    collected = _collect(root)
    for line in [*collected.skipped, *collected.left_out]:
        click.echo(line, err=True)
    if not collected.entries and not collected.left_out:
        click.echo(f"{root}: no {RESULTS_FILE} under it", err=True)
        raise SystemExit(EXIT_INVALID)
    tracks = _tracks(tracks_url)
    axis = FlopsAxis(x_axis)
    try:
        boards = build_boards(collected.entries, tracks, axis)
    except FitUnavailable as exc:
        click.echo(f"{exc}; the boards show the site's fits only", err=True)
        boards = build_boards(collected.entries, tracks, axis, with_converged=False)
    if as_json:
        click.echo(
            boards_json.dumps(boards_json.document(collected.entries, boards, collected.left_out)), nl=False
        )
    else:
        # Piped output gets room for full run names; a terminal keeps its own width.
        console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
        for table in _tables(boards):
            console.print(table)
    if runs_json_file is not None:
        runs_json_file.write_text(leaderboard.to_json(collected.entries))
        click.echo(f"wrote {runs_json_file}", err=True)
    if html_file is not None:
        html_file.write_text(page.render(collected.entries, boards))
        click.echo(f"wrote {html_file}", err=True)
    if collected.left_out:
        raise SystemExit(EXIT_INVALID)


def _collect(root: str) -> leaderboard.Collected:
    if root.endswith(".json"):
        fs, path = fsspec.core.url_to_fs(root)
        if fs.isfile(path):
            return leaderboard.from_runs_json(_read(root), root)
    return leaderboard.collect(root)


def _tracks(url: str | None) -> tuple[Track, ...]:
    if url is None:
        return SITE_TRACKS
    try:
        return parse_tracks(_read(url), url)
    except InvalidTracks as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_INVALID) from None


def _read(url: str) -> str:
    try:
        with fsspec.open(url, "r") as handle:
            text: str = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"{url}: cannot read: {exc}", err=True)
        raise SystemExit(EXIT_INVALID) from None
    return text


def _tables(boards: Boards) -> list[Table]:
    tables = []
    for board in boards.boards:
        if isinstance(board, ScalingBoard):
            tables.append(_scaling_table(board.groups, boards.axis, listed=True))
            if board.unlisted:
                tables.append(_scaling_table(board.unlisted, boards.axis, listed=False))
        else:
            tables.append(_run_table(board))
    return tables


def _run_table(board: RunBoard) -> Table:
    band = (
        f": {board.next_lower_bpb:.4f} < bpb <= {board.track.target_bpb:.4f}"
        if board.track.target_bpb is not None and board.next_lower_bpb is not None
        else ""
    )
    table = Table(title=f"{board.track.name}{band} (by C4-EN bpb)", title_justify="left")
    columns = ("#", "run", "author", "params", "time", "hardware FLOPs", "C4-EN bpb", "vs AdamW")
    for column in columns:
        text = column in ("run", "author")
        table.add_column(column, justify="left" if text else "right", no_wrap=not text)
    for run in board.runs:
        entry = run.entry
        table.add_row(
            str(run.rank),
            entry["run_name"],
            entry["author"]["name"],
            humanize(entry["model_size"]),
            f"{entry['training_time'] / 60:.1f} m",
            f"{entry['training_hardware_flops']:.2e}",
            f"{entry['eval_paloma_c4_en_bpb']:.3f}",
            f"{run.relative_percent:+.2f}%",
        )
    return table


def _scaling_table(groups: list[ScalingGroup], axis: FlopsAxis, listed: bool) -> Table:
    title = (
        f"Scaling: groups by the site's projected bpb at {TARGET_LABEL} {axis.value} (bpb = a*x^-b + c)"
        if listed
        else "Scaling groups the site does not list (no run over 3e20 hardware FLOPs)"
    )
    table = Table(
        title=title,
        title_justify="left",
        caption="site: the site's fit, as it computes it (stopped after 200 iterations); ours: the converged "
        "least-squares fit of the same runs, which the site does not show",
        caption_justify="left",
    )
    columns = ("#", "group", "runs", "ln a", "slope", "asymptote", "R²", "site: bpb", "ours: bpb", "vs AdamW")
    for column in columns:
        table.add_column(column, justify="left" if column == "group" else "right", no_wrap=column != "group")
    for rank, group in enumerate(groups, start=1):
        site = group.site.law if group.site is not None else None
        numbers = (
            [
                f"{math.log(site.a):.3f}",
                f"{-site.b:.3f}",
                f"{site.c:.3f}",
                f"{site.r2:.3f}",
                f"{site.predict(TARGET_FLOPS):.3f}",
            ]
            if site is not None
            else ["-", "-", "-", "-", "no fit"]
        )
        ours = group.converged_projection
        relative = group.relative_percent_at_target
        table.add_row(
            str(rank) if listed else "-",
            group.name,
            str(len(group.runs)),
            *numbers,
            "-" if ours is None else f"{ours:.3f}",
            "-" if relative is None else f"{relative:+.2f}%",
        )
    return table
