"""The boards as one strict-JSON document: what ``speedrun leaderboard --json`` prints.

``runs`` holds the runs.json entries (Marin's, key for key), ``boards`` each board in tracks.json order with
the numbers the site shows (at full precision), ``baseline`` the AdamW ladder, and ``left_out`` one line per
results file or run that did not make an entry. Numbers the site cannot show (no fit) are null, never NaN
or Infinity.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from speedrun_operator.submissions.boards import Board, Boards, RunBoard, ScalingBoard, ScalingGroup
from speedrun_operator.submissions.leaderboard import RunsJsonEntry
from speedrun_operator.submissions.power_law import TARGET_FLOPS, PowerLaw
from speedrun_operator.submissions.site_fit import SiteFit


def document(entries: Sequence[RunsJsonEntry], boards: Boards, left_out: Sequence[str]) -> dict[str, Any]:
    return {
        "runs": list(entries),
        "x_axis": boards.axis.value,
        "boards": [_board(board) for board in boards.boards],
        "baseline": {
            "runs_matching": "adamw_llama_scaling",
            "points": [{"flops": x, "bpb": y} for x, y in boards.baseline.points],
            "site_fit": _site_fit(boards.baseline.fit),
        },
        "left_out": list(left_out),
    }


def dumps(value: Any) -> str:
    """Strict JSON (a NaN or an infinity is a bug, and raises), indent 2."""
    return json.dumps(value, indent=2, allow_nan=False) + "\n"


def _board(board: Board) -> dict[str, Any]:
    head = {"id": board.track.id, "name": board.track.name, "target_bpb": board.track.target_bpb}
    if isinstance(board, ScalingBoard):
        return {
            **head,
            "summary": _scaling_summary(board),
            "groups": _groups(board.groups, ranked=True),
            "unlisted_groups": _groups(board.unlisted, ranked=False),
        }
    return {
        **head,
        "next_lower_bpb": board.next_lower_bpb,
        "summary": _run_summary(board),
        "runs": [
            {
                "rank": run.rank,
                "run_name": run.entry["run_name"],
                "author": run.entry["author"]["name"],
                "model_size": run.entry["model_size"],
                "training_time": run.entry["training_time"],
                "training_hardware_flops": run.entry["training_hardware_flops"],
                "model_flops": run.entry["model_flops"],
                "eval_paloma_c4_en_bpb": run.entry["eval_paloma_c4_en_bpb"],
                "relative_to_baseline_percent": run.relative_percent,
            }
            for run in board.runs
        ],
    }


def _run_summary(board: RunBoard) -> dict[str, Any]:
    """The site's three cards above a run board."""
    runs = [run.entry for run in board.runs]
    return {
        "runs": len(runs),
        "lowest_hardware_flops": min((run["training_hardware_flops"] for run in runs), default=None),
        "best_bpb": min((run["eval_paloma_c4_en_bpb"] or math.inf for run in runs), default=None),
    }


def _scaling_summary(board: ScalingBoard) -> dict[str, Any]:
    """The site's cards above the scaling board: groups counted, listed or not; best of the listed ones."""
    projections = [
        p for group in board.groups if (p := group.site_projection) is not None and math.isfinite(p)
    ]
    slopes = [-group.site.law.b for group in board.groups if group.site is not None]
    return {
        "groups": len(board.groups) + len(board.unlisted),
        "best_projected_bpb": min(projections, default=None),
        "best_slope": min(slopes, default=None),
    }


def _groups(groups: Sequence[ScalingGroup], ranked: bool) -> list[dict[str, Any]]:
    return [
        {
            **({"rank": rank} if ranked else {}),
            "name": group.name,
            "runs": [run["run_name"] for run in group.runs],
            "author": group.runs[0]["author"]["name"],
            "affiliation": group.runs[0]["author"]["affiliation"],
            "author_url": group.runs[0]["author"]["url"],
            "results_folder": group.results_folder,
            "run_completion_timestamp": group.runs[0]["run_completion_timestamp"],
            "site_fit": _site_fit(group.site),
            "converged_fit": _law(group.converged),
            "relative_to_baseline_percent_at_1e22": group.relative_percent_at_target,
        }
        for rank, group in enumerate(groups, start=1)
    ]


def _site_fit(fit: SiteFit | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    law = _law(fit.law)
    assert law is not None
    return {**law, "iterations": fit.iterations, "stopped_at_iteration_cap": fit.stopped_at_cap}


def _law(law: PowerLaw | None) -> dict[str, Any] | None:
    """The site's names: intercept a (shown as ln a), slope -b, asymptote c."""
    if law is None:
        return None
    return {
        "intercept": law.a,
        "log_intercept": math.log(law.a),
        "slope": -law.b,
        "asymptote": law.c,
        "r2": law.r2,
        "projected_bpb": law.predict(TARGET_FLOPS),
    }
