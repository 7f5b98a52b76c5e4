"""The speedrun site's boards, computed as its code computes them (marin-community/speedrun, ``website/src``:
``App.tsx`` picks each board's runs, ``hooks/useSpeedrunData.ts`` ranks them and fits the scaling groups).

- **Run boards**: ``all`` holds every run; a target track holds the runs with next-lower target < bpb <= its
  target. Runs rank by C4-EN bpb, lowest first, ties in runs.json order.
- **Scaling board**: the runs whose name has a folder (``group/130m``) grouped by that folder; each group is
  fitted with the site's solver (:mod:`.site_fit`) against the chosen FLOPs, listed only if one of its runs
  used over 3e20 hardware FLOPs, and ranked by its projection at 1e22 FLOPs (groups without a fit last).
  Beside it, our converged least-squares fit (:func:`.power_law.converged_fit`), which the site does not show.
- **Baseline comparison**: the runs whose name contains ``adamw_llama_scaling`` form the AdamW baseline. A
  run's relative bpb is its percent difference from the baseline at its FLOPs: the baseline's own bpb at
  matching FLOPs, interpolated in log FLOPs inside the baseline's range, the baseline's site fit outside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from speedrun_operator.submissions.leaderboard import RunsJsonEntry
from speedrun_operator.submissions.power_law import TARGET_FLOPS, PowerLaw, converged_fit
from speedrun_operator.submissions.site_fit import Line, SiteFit, linear_fit, site_fit
from speedrun_operator.submissions.site_tracks import (
    ALL_TRACK,
    SCALING_TRACK,
    SITE_TRACKS,
    Track,
    next_lower_target,
)

SCALING_BOARD_MIN_HARDWARE_FLOPS = 3e20
BASELINE_GROUP = "adamw_llama_scaling"
FLOPS_MATCH_REL = 1e-12
RATIO_EPS = 1e-12


class FlopsAxis(StrEnum):
    MODEL = "model_flops"
    HARDWARE = "training_hardware_flops"

    def of(self, entry: RunsJsonEntry) -> float:
        return entry["model_flops"] if self is FlopsAxis.MODEL else entry["training_hardware_flops"]


@dataclass(frozen=True)
class Baseline:
    """The AdamW ladder every run is compared with: its (FLOPs, bpb) points by FLOPs, and the site's fit."""

    points: list[tuple[float, float]]
    fit: SiteFit | None

    def bpb_at(self, flops: float) -> float | None:
        if flops <= 0 or not self.points:
            return None
        for x, y in self.points:
            if _same_flops(x, flops):
                return y
        (first_x, first_y), (last_x, last_y) = self.points[0], self.points[-1]
        if first_x <= flops <= last_x:
            for (left_x, left_y), (right_x, right_y) in zip(self.points, self.points[1:], strict=False):
                if left_x <= flops <= right_x:
                    t = (math.log(flops) - math.log(left_x)) / (math.log(right_x) - math.log(left_x))
                    return left_y + t * (right_y - left_y)
        if self.fit is not None:
            return self.fit.law.predict(flops)
        return first_y if flops < first_x else last_y

    def relative_percent(self, bpb: float, flops: float) -> float:
        """(bpb / baseline - 1) x 100; 0 where there is no baseline to compare with, as the site shows it."""
        baseline = self.bpb_at(flops)
        if not baseline or math.isnan(baseline) or baseline <= 0 or bpb <= 0:
            return 0.0
        ratio = bpb / baseline
        return ((1.0 if abs(1 - ratio) < RATIO_EPS else ratio) - 1) * 100


@dataclass(frozen=True)
class RankedRun:
    rank: int
    entry: RunsJsonEntry
    relative_percent: float
    """Percent difference from the AdamW baseline at this run's FLOPs (negative: better than AdamW)."""


@dataclass(frozen=True)
class RunBoard:
    track: Track
    next_lower_bpb: float | None
    runs: list[RankedRun]


@dataclass(frozen=True)
class ScalingGroup:
    name: str
    runs: list[RunsJsonEntry]
    """In runs.json order; the first names the group's author, date and links, as on the site."""
    site: SiteFit | None
    converged: PowerLaw | None
    relative_line: Line | None
    """Relative percent against ln(FLOPs): the line the site draws in its relative-to-baseline view."""
    listed: bool

    @property
    def site_projection(self) -> float | None:
        return None if self.site is None else self.site.law.predict(TARGET_FLOPS)

    @property
    def converged_projection(self) -> float | None:
        return None if self.converged is None else self.converged.predict(TARGET_FLOPS)

    @property
    def relative_percent_at_target(self) -> float | None:
        line = self.relative_line
        return None if line is None else line.intercept + line.slope * math.log(TARGET_FLOPS)

    @property
    def results_folder(self) -> str:
        """The group's folder, from its first run's results path."""
        return "/".join(self.runs[0]["results_filepath"].split("/")[:-1])


@dataclass(frozen=True)
class ScalingBoard:
    track: Track
    groups: list[ScalingGroup]
    """The listed groups, in the site's order."""
    unlisted: list[ScalingGroup]
    """Groups no run of which used over 3e20 hardware FLOPs: the site does not list them."""


Board = RunBoard | ScalingBoard


@dataclass(frozen=True)
class Boards:
    axis: FlopsAxis
    boards: list[Board]
    baseline: Baseline


def build_boards(
    entries: Sequence[RunsJsonEntry],
    tracks: Sequence[Track] = SITE_TRACKS,
    axis: FlopsAxis = FlopsAxis.MODEL,
    with_converged: bool = True,
) -> Boards:
    """Every board of ``tracks`` over ``entries`` (runs.json order), fitted against ``axis``.

    ``with_converged=False`` leaves out our converged fits (they need scipy)."""
    runs = [entry for entry in entries if entry["eval_paloma_c4_en_bpb"] is not None]
    baseline = _baseline(runs, axis)
    boards: list[Board] = []
    for track in tracks:
        if track.id == SCALING_TRACK:
            boards.append(_scaling_board(track, runs, axis, baseline, with_converged))
        else:
            boards.append(_run_board(track, tuple(tracks), runs, axis, baseline))
    return Boards(axis=axis, boards=boards, baseline=baseline)


def scaling_group_name(run_name: str) -> str:
    """The site's group of a run: its folder, the name without its last part."""
    parts = [part for part in run_name.split("/") if part]
    return run_name if len(parts) <= 1 else "/".join(parts[:-1])


def _bpb(entry: RunsJsonEntry) -> float:
    bpb = entry["eval_paloma_c4_en_bpb"]
    assert bpb is not None  # build_boards keeps only runs with a bpb
    return bpb


def _run_board(
    track: Track, tracks: tuple[Track, ...], runs: list[RunsJsonEntry], axis: FlopsAxis, baseline: Baseline
) -> RunBoard:
    lower = next_lower_target(track, tracks)
    members = runs
    if track.id != ALL_TRACK and track.target_bpb and lower is not None:
        target = track.target_bpb
        members = [run for run in runs if lower < _bpb(run) <= target]
    ordered = sorted(members, key=_bpb)
    return RunBoard(
        track=track,
        next_lower_bpb=lower,
        runs=[
            RankedRun(rank, run, baseline.relative_percent(_bpb(run), axis.of(run)))
            for rank, run in enumerate(ordered, start=1)
        ],
    )


def _scaling_board(
    track: Track, runs: list[RunsJsonEntry], axis: FlopsAxis, baseline: Baseline, with_converged: bool
) -> ScalingBoard:
    members: dict[str, list[RunsJsonEntry]] = {}
    for run in runs:
        if "/" in run["run_name"]:
            members.setdefault(scaling_group_name(run["run_name"]), []).append(run)
    groups = [
        _group(name, group_runs, axis, baseline, with_converged) for name, group_runs in members.items()
    ]
    listed = sorted(
        (group for group in groups if group.listed),
        key=lambda group: math.inf if group.site_projection is None else group.site_projection,
    )
    return ScalingBoard(track=track, groups=listed, unlisted=[group for group in groups if not group.listed])


def _group(
    name: str, runs: list[RunsJsonEntry], axis: FlopsAxis, baseline: Baseline, with_converged: bool
) -> ScalingGroup:
    points = [(axis.of(run), _bpb(run)) for run in runs if axis.of(run) > 0 and _bpb(run) > 0]
    relative = [
        (math.log(axis.of(run)), percent)
        for run in runs
        if axis.of(run) > 0 and math.isfinite(percent := baseline.relative_percent(_bpb(run), axis.of(run)))
    ]
    return ScalingGroup(
        name=name,
        runs=runs,
        site=site_fit(points),
        converged=converged_fit(points) if with_converged else None,
        relative_line=linear_fit(relative) if len(relative) >= 2 else None,
        listed=any(run["training_hardware_flops"] > SCALING_BOARD_MIN_HARDWARE_FLOPS for run in runs),
    )


def _baseline(runs: list[RunsJsonEntry], axis: FlopsAxis) -> Baseline:
    points = sorted(
        (
            (axis.of(run), _bpb(run))
            for run in runs
            if BASELINE_GROUP in run["run_name"].lower() and axis.of(run) > 0 and _bpb(run) > 0
        ),
        key=lambda point: point[0],
    )
    return Baseline(points=points, fit=site_fit(points) if points else None)


def _same_flops(a: float, b: float) -> bool:
    """The site treats FLOP counts within a relative 1e-12 as the same."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(a - b) <= max(abs(a), abs(b), 1.0) * FLOPS_MATCH_REL
