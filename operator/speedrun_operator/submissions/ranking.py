"""The leaderboard's two rankings, as the speedrun site computes them.

Runs rank by C4-EN bits per byte, lower first. Runs in a shared parent folder (``group/130m``,
``group/300m``...) form a scaling group: bpb = a * x^(-b) + c is fitted against FLOPs (model FLOPs by
default, the site's default axis) by least squares with the site's bounds (a > 0, 0 < b <= 2,
0 <= c < the group's best bpb), and groups rank by the fit's projection at 1e22 FLOPs. A fit needs three
runs at different FLOPs; the site lists a group on its scaling board once a run used over 3e20 hardware FLOPs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from speedrun_operator.submissions.leaderboard import RunsJsonEntry

if TYPE_CHECKING:
    import numpy as np

TARGET_FLOPS = 1e22
TARGET_LABEL = "1e22"
SCALING_BOARD_MIN_HARDWARE_FLOPS = 3e20
MIN_FIT_POINTS = 3
ENTROPY_FLOOR_GUESS = 0.7


class FlopsAxis(StrEnum):
    MODEL = "model_flops"
    HARDWARE = "training_hardware_flops"

    def of(self, entry: RunsJsonEntry) -> float:
        return entry["model_flops"] if self is FlopsAxis.MODEL else entry["training_hardware_flops"]


class FitUnavailable(RuntimeError):
    """scipy is missing: the power-law fits need it (the rest of the leaderboard does not)."""


@dataclass(frozen=True)
class PowerLaw:
    """bpb = a * x^(-b) + c, with R^2 over the fitted points."""

    a: float
    b: float
    c: float
    r2: float

    def predict(self, flops: float) -> float:
        return self.a * float(flops ** (-self.b)) + self.c


@dataclass(frozen=True)
class GroupRanking:
    name: str
    runs: list[RunsJsonEntry]
    fit: PowerLaw | None
    """None without three runs at different FLOPs that have a bpb, or when the fit does not converge."""

    @property
    def projected_bpb(self) -> float | None:
        return None if self.fit is None else self.fit.predict(TARGET_FLOPS)

    @property
    def on_scaling_board(self) -> bool:
        return any(run["training_hardware_flops"] > SCALING_BOARD_MIN_HARDWARE_FLOPS for run in self.runs)


def rank_runs(entries: Iterable[RunsJsonEntry]) -> list[RunsJsonEntry]:
    """Lowest C4-EN bpb first; runs without one follow, by name."""
    return sorted(
        entries,
        key=lambda entry: (
            entry["eval_paloma_c4_en_bpb"] is None,
            entry["eval_paloma_c4_en_bpb"] or 0.0,
            entry["run_name"],
        ),
    )


def group_name(run_name: str) -> str | None:
    """The scaling group of a run: its parent folder, or None for a run at the top level."""
    parent = run_name.rstrip("/").rpartition("/")[0]
    return parent or None


def rank_groups(entries: Iterable[RunsJsonEntry], axis: FlopsAxis = FlopsAxis.MODEL) -> list[GroupRanking]:
    """Groups with a fit first, lowest projected bpb at 1e22 FLOPs first; the others follow, by name."""
    members: dict[str, list[RunsJsonEntry]] = {}
    for entry in entries:
        name = group_name(entry["run_name"])
        if name is not None:
            members.setdefault(name, []).append(entry)
    groups = [
        GroupRanking(name=name, runs=runs, fit=fit_power_law(_points(runs, axis)))
        for name, runs in members.items()
    ]
    return sorted(
        groups, key=lambda group: (group.projected_bpb is None, group.projected_bpb or 0.0, group.name)
    )


def fit_power_law(points: Sequence[tuple[float, float]]) -> PowerLaw | None:
    """Least-squares bpb = a * x^(-b) + c through (FLOPs, bpb) points; None without three distinct FLOPs.

    numpy and scipy load here, not with the module: the ``speedrun`` command starts without them."""
    try:
        import numpy as np
        from scipy.optimize import OptimizeWarning, curve_fit  # type: ignore[import-untyped]
    except ImportError as exc:
        raise FitUnavailable(
            f"fitting scaling groups needs scipy ({exc}): pip install 'speedrun-operator[leaderboard]'"
        ) from None
    usable = sorted((x, y) for x, y in points if x > 0 and y > 0 and math.isfinite(x) and math.isfinite(y))
    if len({x for x, _ in usable}) < MIN_FIT_POINTS:
        return None
    # Fit in u = x / 1e22, where the scale is A = a * 1e22^(-b): A is of order one, so the solver behaves.
    u = np.array([x / TARGET_FLOPS for x, _ in usable])
    y = np.array([bpb for _, bpb in usable])
    best = float(y.min())
    c0 = min(ENTROPY_FLOOR_GUESS, 0.7 * best)
    slope, intercept = np.polyfit(np.log(u), np.log(y - c0), 1)
    b0 = min(max(-float(slope), 0.01), 1.99)
    try:
        with warnings.catch_warnings():
            # Three points for three parameters leave no covariance to estimate; the fit itself is fine.
            warnings.simplefilter("ignore", OptimizeWarning)
            (scale, b, c), _ = curve_fit(
                _scaled_power_law,
                u,
                y,
                p0=[math.exp(float(intercept)), b0, c0],
                bounds=([0.0, 1e-6, 0.0], [np.inf, 2.0, 0.999 * best]),
                maxfev=10_000,
            )
    except (RuntimeError, ValueError):
        return None
    predicted = _scaled_power_law(u, scale, b, c)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 if total == 0 else 1.0 - float(((y - predicted) ** 2).sum()) / total
    return PowerLaw(a=float(scale) * TARGET_FLOPS ** float(b), b=float(b), c=float(c), r2=r2)


def _scaled_power_law(u: np.ndarray, scale: float, b: float, c: float) -> np.ndarray:
    result: np.ndarray = scale * u ** (-b) + c
    return result


def _points(runs: Iterable[RunsJsonEntry], axis: FlopsAxis) -> list[tuple[float, float]]:
    return [(axis.of(run), bpb) for run in runs if (bpb := run["eval_paloma_c4_en_bpb"]) is not None]
