"""bpb = a * x^(-b) + c: the scaling law the leaderboard fits to each group of runs, and our own fit of it.

``converged_fit`` is the least-squares optimum, found with scipy within the site's bounds (a > 0, 0 < b <= 2,
0 <= c < the group's best bpb). The site stops its own solver after 200 iterations, short of that optimum on
real ladders; ``site_fit`` reproduces the site's numbers and the boards rank by those.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

TARGET_FLOPS = 1e22
"""The compute every scaling group is projected to."""
TARGET_LABEL = "1e22"
MIN_FIT_POINTS = 3
ENTROPY_FLOOR_GUESS = 0.7


class FitUnavailable(RuntimeError):
    """scipy is missing: our converged fits need it (the site's fits and the boards do not)."""


@dataclass(frozen=True)
class PowerLaw:
    """bpb = a * x^(-b) + c, with R^2 over the fitted points."""

    a: float
    b: float
    c: float
    r2: float

    def predict(self, flops: float) -> float:
        return self.a * float(flops ** (-self.b)) + self.c


def converged_fit(points: Sequence[tuple[float, float]]) -> PowerLaw | None:
    """Least-squares bpb = a * x^(-b) + c through (FLOPs, bpb) points; None without three distinct FLOPs.

    numpy and scipy load here, not with the module: the ``speedrun`` command starts without them."""
    try:
        import numpy as np
        from scipy.optimize import OptimizeWarning, curve_fit  # type: ignore[import-untyped]
    except ImportError as exc:
        raise FitUnavailable(
            f"our converged fit needs scipy ({exc}): pip install 'speedrun-operator[leaderboard]'"
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
