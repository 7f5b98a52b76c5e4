"""A static leaderboard page: bpb against FLOPs as an inline SVG chart, then both rankings as tables.

Everything is in the one file (no scripts, no fonts, no CDN), so it opens offline and from object storage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from speedrun_operator.runinfo import humanize
from speedrun_operator.submissions.boards import Boards, FlopsAxis, RunBoard, ScalingBoard, ScalingGroup
from speedrun_operator.submissions.leaderboard import RunsJsonEntry
from speedrun_operator.submissions.power_law import TARGET_FLOPS, TARGET_LABEL, PowerLaw

WIDTH, HEIGHT = 1000, 520
LEFT, RIGHT, TOP, BOTTOM = 70, 230, 30, 60
CURVE_POINTS = 60
UNGROUPED_COLOUR = "#6b7280"
PALETTE = (
    "#2563eb",
    "#dc2626",
    "#16a34a",
    "#d97706",
    "#7c3aed",
    "#0891b2",
    "#db2777",
    "#65a30d",
    "#9333ea",
    "#ea580c",
)

STYLE = """
body { font-family: sans-serif; margin: 24px; color: #111827; background: #ffffff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 4px 10px; text-align: right; }
th { background: #f3f4f6; } td.text, th.text { text-align: left; }
svg text { font-family: sans-serif; font-size: 12px; fill: #374151; }
"""


@dataclass(frozen=True)
class _Scale:
    """Maps (FLOPs, bpb) to SVG coordinates: x on log10 decades, y linear with bpb growing upwards."""

    x_decades: tuple[int, int]
    y_range: tuple[float, float]

    def x(self, flops: float) -> float:
        low, high = self.x_decades
        return LEFT + (math.log10(flops) - low) / (high - low) * (WIDTH - LEFT - RIGHT)

    def y(self, bpb: float) -> float:
        low, high = self.y_range
        return HEIGHT - BOTTOM - (bpb - low) / (high - low) * (HEIGHT - TOP - BOTTOM)


def render(entries: Sequence[RunsJsonEntry], boards: Boards) -> str:
    """The whole page: the chart of every run, then each board in tracks.json order."""
    scaling = next((board for board in boards.boards if isinstance(board, ScalingBoard)), None)
    # Groups the site does not list are drawn and tabled too (marked so): a submitter previewing small runs
    # sees their fit before a run reaches 3e20 hardware FLOPs.
    listed = [*scaling.groups, *scaling.unlisted] if scaling is not None else []
    colours = {group.name: PALETTE[index % len(PALETTE)] for index, group in enumerate(listed)}
    sections = []
    for board in boards.boards:
        if isinstance(board, ScalingBoard):
            sections.append(
                f"<h2>{escape(board.track.name)}: groups by projected bpb at {TARGET_LABEL} FLOPs</h2>"
            )
            sections.append(_groups_table(board))
        else:
            sections.append(f"<h2>{escape(board.track.name)}</h2>{_band(board)}")
            sections.append(_runs_table(board))
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8"><title>Speedrun leaderboard</title>',
            f"<style>{STYLE}</style></head><body>",
            "<h1>Speedrun leaderboard</h1>",
            f"<p>C4-EN bits per byte against {_axis_label(boards.axis)}. Solid lines: the site's fit "
            f"bpb = a&middot;x<sup>&minus;b</sup> + c of each scaling group (Levenberg&ndash;Marquardt, "
            "stopped after 200 iterations, as the site computes it); dashed: our converged least-squares fit "
            f"of the same runs, which the site does not show. Both projected to {TARGET_LABEL} FLOPs.</p>",
            _chart(entries, listed, boards.axis, colours),
            *sections,
            "</body></html>",
        ]
    )


def _chart(
    entries: Sequence[RunsJsonEntry],
    groups: Sequence[ScalingGroup],
    axis: FlopsAxis,
    colours: dict[str, str],
) -> str:
    """The SVG chart, or a sentence where there is nothing to draw: never an empty chart."""
    points = [
        (flops, bpb, entry)
        for entry in entries
        if (bpb := entry["eval_paloma_c4_en_bpb"]) is not None
        and math.isfinite(bpb)
        and math.isfinite(flops := axis.of(entry))
        and flops > 0
    ]
    if not points:
        return f"<p>No run has a C4-EN bpb and positive {_axis_label(axis)}: there is nothing to chart.</p>"
    fits = [
        (group, law) for group in groups for law in (_site_law(group), group.converged) if law is not None
    ]
    scale = _scale([x for x, _, _ in points], [y for _, y, _ in points], [law for _, law in fits])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="bpb against FLOPs">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        *_axes(scale, axis),
    ]
    for group in groups:
        start = min(axis.of(run) for run in group.runs)
        for law, dashed in ((_site_law(group), False), (group.converged, True)):
            if law is not None and start > 0:
                parts.append(_curve(scale, law, start, colours[group.name], dashed))
    for flops, bpb, entry in points:
        colour = colours.get(_group_of(entry["run_name"], groups) or "", UNGROUPED_COLOUR)
        parts.append(
            f'<circle cx="{scale.x(flops):.1f}" cy="{scale.y(bpb):.1f}" r="5" fill="{colour}">'
            f"<title>{escape(entry['run_name'])}: {bpb:.4f} bpb</title></circle>"
        )
    parts.extend(_legend([group.name for group in groups], colours))
    parts.append("</svg>")
    return "".join(parts)


def _site_law(group: ScalingGroup) -> PowerLaw | None:
    return None if group.site is None else group.site.law


def _group_of(run_name: str, groups: Sequence[ScalingGroup]) -> str | None:
    return next((group.name for group in groups if any(r["run_name"] == run_name for r in group.runs)), None)


def _scale(xs: Sequence[float], ys: Sequence[float], fits: Sequence[PowerLaw]) -> _Scale:
    high_x = max([*xs, *([TARGET_FLOPS] if fits else [])])
    low_decade = math.floor(math.log10(min(xs)))
    high_decade = max(math.ceil(math.log10(high_x)), low_decade + 1)
    values = [*ys, *(fit.predict(TARGET_FLOPS) for fit in fits)]
    low, high = min(values), max(values)
    margin = (high - low) * 0.08 or 0.05
    return _Scale((low_decade, high_decade), (low - margin, high + margin))


def _axes(scale: _Scale, axis: FlopsAxis) -> list[str]:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    parts = [
        f'<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#111827"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#111827"/>',
    ]
    low, high = scale.x_decades
    for decade in range(low, high + 1):
        x = scale.x(10.0**decade)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">1e{decade}</text>')
    y_low, y_high = scale.y_range
    for step in range(6):
        value = y_low + (y_high - y_low) * step / 5
        y = scale.y(value)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#f3f4f6"/>')
        parts.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{value:.3f}</text>')
    parts.append(
        f'<text x="{(LEFT + right) / 2}" y="{HEIGHT - 16}" text-anchor="middle">{_axis_label(axis)}</text>'
    )
    parts.append(
        f'<text x="18" y="{(TOP + bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {(TOP + bottom) / 2})">C4-EN bpb</text>'
    )
    return parts


def _curve(scale: _Scale, fit: PowerLaw, start: float, colour: str, dashed: bool) -> str:
    low, high = math.log10(start), math.log10(TARGET_FLOPS)
    xs = [10 ** (low + (high - low) * index / (CURVE_POINTS - 1)) for index in range(CURVE_POINTS)]
    path = " ".join(f"{scale.x(x):.1f},{scale.y(fit.predict(x)):.1f}" for x in xs)
    end_x, end_y = scale.x(TARGET_FLOPS), scale.y(fit.predict(TARGET_FLOPS))
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    return (
        f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        f'<rect x="{end_x - 5:.1f}" y="{end_y - 5:.1f}" width="10" height="10" fill="{colour}" '
        f'transform="rotate(45 {end_x:.1f} {end_y:.1f})"/>'
    )


def _legend(names: Sequence[str], colours: dict[str, str]) -> list[str]:
    x = WIDTH - RIGHT + 20
    rows = [*((name, colours[name]) for name in names), ("other runs", UNGROUPED_COLOUR)]
    parts = []
    for index, (name, colour) in enumerate(rows):
        y = TOP + 10 + index * 18
        parts.append(f'<circle cx="{x}" cy="{y}" r="5" fill="{colour}"/>')
        parts.append(f'<text x="{x + 12}" y="{y + 4}">{escape(name)}</text>')
    return parts


def _axis_label(axis: FlopsAxis) -> str:
    return "model FLOPs" if axis is FlopsAxis.MODEL else "training hardware FLOPs"


def _band(board: RunBoard) -> str:
    if board.track.target_bpb is None or board.next_lower_bpb is None:
        return ""
    return f"<p>Runs with {board.next_lower_bpb:.4f} &lt; C4-EN bpb &le; {board.track.target_bpb:.4f}.</p>"


def _runs_table(board: RunBoard) -> str:
    if not board.runs:
        return "<p>No run on this board.</p>"
    header = (
        '<tr><th>#</th><th class="text">run</th><th class="text">author</th><th>parameters</th>'
        "<th>model FLOPs</th><th>hardware FLOPs</th><th>training time</th><th>C4-EN bpb</th>"
        "<th>vs AdamW baseline</th></tr>"
    )
    rows = []
    for run in board.runs:
        entry = run.entry
        rows.append(
            f"<tr><td>{run.rank}</td>"
            f'<td class="text">{escape(entry["run_name"])}</td>'
            f'<td class="text">{escape(entry["author"]["name"])}</td>'
            f"<td>{humanize(entry['model_size'])}</td><td>{entry['model_flops']:.2e}</td>"
            f"<td>{entry['training_hardware_flops']:.2e}</td><td>{entry['training_time'] / 60:.1f} m</td>"
            f"<td>{entry['eval_paloma_c4_en_bpb']:.3f}</td><td>{run.relative_percent:+.2f}%</td></tr>"
        )
    return f"<table>{header}{''.join(rows)}</table>"


def _groups_table(board: ScalingBoard) -> str:
    listed = (
        _group_rows(board.groups, ranked=True)
        if board.groups
        else "<p>No scaling group is listed: none has a run over 3e20 hardware FLOPs.</p>"
    )
    if not board.unlisted:
        return listed
    return (
        f"{listed}<h3>Groups the site does not list (no run over 3e20 hardware FLOPs)</h3>"
        f"{_group_rows(board.unlisted, ranked=False)}"
    )


def _group_rows(groups: Sequence[ScalingGroup], ranked: bool) -> str:
    header = (
        '<tr><th>#</th><th class="text">group</th><th>runs</th><th>intercept (ln a)</th><th>slope</th>'
        f"<th>asymptote</th><th>R&sup2;</th><th>projected bpb</th><th>ours, converged: projected</th>"
        f"<th>vs AdamW at {TARGET_LABEL}</th></tr>"
    )
    rows = []
    for rank, group in enumerate(groups, start=1):
        site = _site_law(group)
        numbers = (
            f"<td>{math.log(site.a):.3f}</td><td>{-site.b:.3f}</td><td>{site.c:.3f}</td><td>{site.r2:.3f}</td>"
            f"<td>{site.predict(TARGET_FLOPS):.3f}</td>"
            if site is not None
            else '<td colspan="5">no fit: it needs three runs with a bpb</td>'
        )
        ours = group.converged_projection
        relative = group.relative_percent_at_target
        rows.append(
            f'<tr><td>{rank if ranked else "-"}</td><td class="text">{escape(group.name)}</td>'
            f"<td>{len(group.runs)}</td>{numbers}"
            f"<td>{'-' if ours is None else f'{ours:.3f}'}</td>"
            f"<td>{'-' if relative is None else f'{relative:+.2f}%'}</td></tr>"
        )
    return f"<table>{header}{''.join(rows)}</table>"
