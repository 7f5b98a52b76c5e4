"""A static leaderboard page: bpb against FLOPs as an inline SVG chart, then both rankings as tables.

Everything is in the one file (no scripts, no fonts, no CDN), so it opens offline and from object storage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from speedrun_operator.runinfo import humanize
from speedrun_operator.submissions.leaderboard import RunsJsonEntry
from speedrun_operator.submissions.ranking import (
    TARGET_FLOPS,
    TARGET_LABEL,
    FlopsAxis,
    GroupRanking,
    PowerLaw,
    group_name,
)

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


def render(entries: Sequence[RunsJsonEntry], groups: Sequence[GroupRanking], axis: FlopsAxis) -> str:
    """The whole page. ``entries`` in leaderboard order, ``groups`` as ranked."""
    colours = {group.name: PALETTE[index % len(PALETTE)] for index, group in enumerate(groups)}
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8"><title>Speedrun leaderboard</title>',
            f"<style>{STYLE}</style></head><body>",
            "<h1>Speedrun leaderboard</h1>",
            f"<p>C4-EN bits per byte against {_axis_label(axis)}; dashed lines are scaling fits "
            f"bpb = a&middot;x<sup>&minus;b</sup> + c, projected to {TARGET_LABEL} FLOPs.</p>",
            _chart(entries, groups, axis, colours),
            "<h2>Runs, by C4-EN bpb</h2>",
            _runs_table(entries),
            f"<h2>Scaling groups, by projected bpb at {TARGET_LABEL} FLOPs</h2>",
            _groups_table(groups),
            "</body></html>",
        ]
    )


def _chart(
    entries: Sequence[RunsJsonEntry],
    groups: Sequence[GroupRanking],
    axis: FlopsAxis,
    colours: dict[str, str],
) -> str:
    points = [
        (flops, bpb, entry)
        for entry in entries
        if (bpb := entry["eval_paloma_c4_en_bpb"]) is not None and (flops := axis.of(entry)) > 0
    ]
    header = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="bpb against FLOPs">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>'
    )
    if not points:
        return f'{header}<text x="{LEFT}" y="{HEIGHT / 2}">No run has a C4-EN bpb yet.</text></svg>'
    fits = [(group, group.fit) for group in groups if group.fit is not None]
    scale = _scale([x for x, _, _ in points], [y for _, y, _ in points], [fit for _, fit in fits])
    parts = [header, *_axes(scale, axis)]
    for group, fit in fits:
        parts.append(_curve(scale, fit, min(axis.of(run) for run in group.runs), colours[group.name]))
    for flops, bpb, entry in points:
        colour = colours.get(group_name(entry["run_name"]) or "", UNGROUPED_COLOUR)
        parts.append(
            f'<circle cx="{scale.x(flops):.1f}" cy="{scale.y(bpb):.1f}" r="5" fill="{colour}">'
            f"<title>{escape(entry['run_name'])}: {bpb:.4f} bpb</title></circle>"
        )
    ungrouped = any(group_name(entry["run_name"]) is None for _, _, entry in points)
    parts.extend(_legend([group.name for group in groups], colours, ungrouped))
    parts.append("</svg>")
    return "".join(parts)


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


def _curve(scale: _Scale, fit: PowerLaw, start: float, colour: str) -> str:
    low, high = math.log10(start), math.log10(TARGET_FLOPS)
    xs = [10 ** (low + (high - low) * index / (CURVE_POINTS - 1)) for index in range(CURVE_POINTS)]
    path = " ".join(f"{scale.x(x):.1f},{scale.y(fit.predict(x)):.1f}" for x in xs)
    end_x, end_y = scale.x(TARGET_FLOPS), scale.y(fit.predict(TARGET_FLOPS))
    return (
        f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="6 4"/>'
        f'<rect x="{end_x - 5:.1f}" y="{end_y - 5:.1f}" width="10" height="10" fill="{colour}" '
        f'transform="rotate(45 {end_x:.1f} {end_y:.1f})"/>'
    )


def _legend(names: Sequence[str], colours: dict[str, str], ungrouped: bool) -> list[str]:
    x = WIDTH - RIGHT + 20
    rows = [(name, colours[name]) for name in names]
    if ungrouped:
        rows.append(("ungrouped runs", UNGROUPED_COLOUR))
    parts = []
    for index, (name, colour) in enumerate(rows):
        y = TOP + 10 + index * 20
        parts.append(f'<circle cx="{x}" cy="{y}" r="5" fill="{colour}"/>')
        parts.append(f'<text x="{x + 12}" y="{y + 4}">{escape(name)}</text>')
    return parts


def _axis_label(axis: FlopsAxis) -> str:
    return "model FLOPs" if axis is FlopsAxis.MODEL else "training hardware FLOPs"


def _runs_table(entries: Sequence[RunsJsonEntry]) -> str:
    header = (
        '<tr><th>#</th><th class="text">run</th><th class="text">author</th><th>parameters</th>'
        "<th>model FLOPs</th><th>hardware FLOPs</th><th>training time (s)</th><th>C4-EN bpb</th></tr>"
    )
    rows = []
    for rank, entry in enumerate(entries, start=1):
        bpb = entry["eval_paloma_c4_en_bpb"]
        rows.append(
            f"<tr><td>{rank if bpb is not None else '-'}</td>"
            f'<td class="text">{escape(entry["run_name"])}</td>'
            f'<td class="text">{escape(entry["author"]["name"])}</td>'
            f"<td>{humanize(entry['model_size'])}</td><td>{entry['model_flops']:.3e}</td>"
            f"<td>{entry['training_hardware_flops']:.3e}</td><td>{entry['training_time']:,.1f}</td>"
            f"<td>{'-' if bpb is None else f'{bpb:.4f}'}</td></tr>"
        )
    return f"<table>{header}{''.join(rows)}</table>"


def _groups_table(groups: Sequence[GroupRanking]) -> str:
    header = (
        '<tr><th>#</th><th class="text">group</th><th>runs</th><th>a</th><th>b</th><th>c</th>'
        f"<th>R&sup2;</th><th>bpb at {TARGET_LABEL}</th></tr>"
    )
    rows = []
    for rank, group in enumerate(groups, start=1):
        fit = group.fit
        numbers = (
            f"<td>{fit.a:.4g}</td><td>{fit.b:.4f}</td><td>{fit.c:.4f}</td><td>{fit.r2:.4f}</td>"
            f"<td>{fit.predict(TARGET_FLOPS):.4f}</td>"
            if fit is not None
            else '<td colspan="5">no fit: it needs three runs with a bpb</td>'
        )
        rows.append(
            f'<tr><td>{rank if fit is not None else "-"}</td><td class="text">{escape(group.name)}</td>'
            f"<td>{len(group.runs)}</td>{numbers}</tr>"
        )
    return f"<table>{header}{''.join(rows)}</table>"
