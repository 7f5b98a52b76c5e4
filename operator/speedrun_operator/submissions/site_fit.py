"""The speedrun site's scaling fit, reproduced step for step so that our boards show the site's numbers.

The site (marin-community/speedrun, ``website/src/utils/regression.ts``) fits bpb = a * x^(-b) + c with the
npm package ml-levenberg-marquardt 5.0.0 (matrices from ml-matrix 6.12.1):

- start: c0 = min(0.7, 0.7 * the lowest bpb); a0 and b0 from a least-squares line through
  (ln x, ln(bpb - c0)), b0 = max(0.01, -slope), a0 = e^intercept (a0 = 1, b0 = 0.1 without that line);
- each step: a forward-difference Jacobian with step 1e-6 in every parameter, the Levenberg-Marquardt update
  (damping * I + J J^T)^-1 J r with the inverse taken by LU decomposition, then each parameter clipped to
  [1e-10, 1e30] x [1e-6, 2] x [0, 0.999 * the lowest bpb];
- damping starts at 1.5 and is divided by 9 (floor 1e-7) after a step whose gain ratio exceeds 1e-3, otherwise
  multiplied by 11 (cap 1e7); a step is taken even when it raises the error, and the best parameters seen
  (by more than 1e-8) are returned;
- it stops after 200 iterations, or earlier only when the summed squared error is at most 1e-8.

On real ladders the error never falls to 1e-8, so the site reports wherever iteration 200 left it: not the
least-squares optimum (``power_law.converged_fit``), which projects differently at 1e22 FLOPs. Sums run in the
site's order, and a zero divisor gives what JavaScript gives, so the arithmetic is the site's to the last few
bits (its ``Math.pow`` and ours may differ in the last bit).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from speedrun_operator.submissions.power_law import PowerLaw

ENTROPY_FLOOR_GUESS = 0.7
MIN_POINTS = 3
MAX_ITERATIONS = 200
ERROR_TOLERANCE = 1e-8
INITIAL_DAMPING = 1.5
DAMPING_STEP_UP = 11.0
DAMPING_STEP_DOWN = 9.0
MIN_DAMPING, MAX_DAMPING = 1e-7, 1e7
IMPROVEMENT_THRESHOLD = 1e-3
GRADIENT_STEP = 1e-6
LOWER_BOUNDS = (1e-10, 1e-6, 0.0)
UPPER_BOUND_A, UPPER_BOUND_B, FLOOR_BOUND_RATIO = 1e30, 2.0, 0.999

Point = tuple[float, float]
Params = list[float]


@dataclass(frozen=True)
class Line:
    """y = intercept + slope * x, with R^2."""

    slope: float
    intercept: float
    r2: float


@dataclass(frozen=True)
class SiteFit:
    """The site's fit of one set of points, and how its solver ended."""

    law: PowerLaw
    iterations: int
    stopped_at_cap: bool
    """True when the solver ran all 200 iterations without reaching its error tolerance."""


def linear_fit(points: Sequence[Point]) -> Line | None:
    """Least squares as the site computes it: None under two points or when every x is the same."""
    n = len(points)
    if n < 2:
        return None
    sum_x = _total(x for x, _ in points)
    sum_y = _total(y for _, y in points)
    sum_xy = _total(x * y for x, y in points)
    sum_x2 = _total(x * x for x, _ in points)
    denominator = n * sum_x2 - sum_x * sum_x
    if denominator == 0:
        return None
    slope = (n * sum_xy - sum_x * sum_y) / denominator
    intercept = (sum_y - slope * sum_x) / n
    mean = sum_y / n
    residual = _total((y - (intercept + slope * x)) ** 2 for x, y in points)
    spread = _total((y - mean) ** 2 for _, y in points)
    return Line(slope=slope, intercept=intercept, r2=1.0 if spread == 0 else 1.0 - residual / spread)


def site_fit(points: Sequence[Point]) -> SiteFit | None:
    """The site's power law through (FLOPs, bpb) points; None where the site draws no fit."""
    if len(points) < MIN_POINTS:
        return None
    usable = sorted(
        (point for point in points if point[0] > 0 and math.isfinite(point[0]) and math.isfinite(point[1])),
        key=lambda point: point[0],
    )
    if len(usable) < MIN_POINTS:
        return None
    xs = [x for x, _ in usable]
    ys = [y for _, y in usable]
    lowest = min(ys)
    start = _starting_point(usable, min(ENTROPY_FLOOR_GUESS, lowest * 0.7))
    upper = (UPPER_BOUND_A, UPPER_BOUND_B, lowest * FLOOR_BOUND_RATIO)
    try:
        (a, b, c), iterations, converged = _levenberg_marquardt(xs, ys, start, upper)
    except _Singular:
        return None
    if not all(math.isfinite(value) for value in (a, b, c)) or a <= 0 or b <= 0 or c < 0:
        return None
    mean = _total(ys) / len(ys)
    residual = _total((y - _law(a, b, c, x)) ** 2 for x, y in usable)
    spread = _total((y - mean) ** 2 for y in ys)
    law = PowerLaw(a=a, b=b, c=c, r2=1.0 if spread == 0 else 1.0 - residual / spread)
    return SiteFit(law=law, iterations=iterations, stopped_at_cap=not converged)


def _starting_point(points: Sequence[Point], c0: float) -> Params:
    logs = [(math.log(x), math.log(y - c0)) for x, y in points if y - c0 > 0]
    line = linear_fit(logs) if len(logs) >= 2 else None
    if line is None:
        return [1.0, 0.1, c0]
    return [_exp(line.intercept), max(0.01, -line.slope), c0]


class _Singular(ArithmeticError):
    """ml-matrix's LU solve refuses a matrix with a zero pivot; the site then shows no fit."""


def _levenberg_marquardt(
    xs: Sequence[float], ys: Sequence[float], start: Params, upper: tuple[float, float, float]
) -> tuple[Params, int, bool]:
    params = list(start)
    damping = INITIAL_DAMPING
    error = _squared_error(xs, ys, params)
    best_error, best = error, list(params)
    converged = error <= ERROR_TOLERANCE
    iteration = 0
    while iteration < MAX_ITERATIONS and not converged:
        previous = error
        step, gradient = _step(xs, ys, params, damping)
        params = [_clip(params[k] - step[k], LOWER_BOUNDS[k], upper[k]) for k in range(3)]
        error = _squared_error(xs, ys, params)
        if math.isnan(error):
            break
        if error < best_error - ERROR_TOLERANCE:
            best_error, best = error, list(params)
        predicted = _total(step[k] * (step[k] * damping + gradient[k]) for k in range(3))
        gain = _js_divide(previous - error, predicted)
        if gain > IMPROVEMENT_THRESHOLD:
            damping = max(damping / DAMPING_STEP_DOWN, MIN_DAMPING)
        else:
            damping = min(damping * DAMPING_STEP_UP, MAX_DAMPING)
        converged = error <= ERROR_TOLERANCE
        iteration += 1
    return best, iteration, converged


def _step(xs: Sequence[float], ys: Sequence[float], params: Params, damping: float) -> tuple[Params, Params]:
    """The parameter change and J r, as ml-levenberg-marquardt's step computes them."""
    a, b, c = params
    values = [_law(a, b, c, x) for x in xs]
    # Row k: (f(params) - f(params with k moved by the step)) / step, the sign the package uses.
    jacobian = []
    for k in range(3):
        moved = list(params)
        moved[k] += GRADIENT_STEP
        jacobian.append(
            [
                (value - _law(moved[0], moved[1], moved[2], x)) / GRADIENT_STEP
                for value, x in zip(values, xs, strict=True)
            ]
        )
    residuals = [y - value for y, value in zip(ys, values, strict=True)]
    normal = [
        [
            (damping if i == j else 0.0)
            + _total(p * q for p, q in zip(jacobian[i], jacobian[j], strict=True))
            for j in range(3)
        ]
        for i in range(3)
    ]
    gradient = [_total(p * r for p, r in zip(row, residuals, strict=True)) for row in jacobian]
    inverse = _lu_inverse(normal)
    step = [_total(inverse[i][k] * gradient[k] for k in range(3)) for i in range(3)]
    return step, gradient


def _lu_inverse(matrix: list[list[float]]) -> list[list[float]]:
    """ml-matrix's inverse: Doolittle LU with partial pivoting (Crout's column order), then a solve for I."""
    n = len(matrix)
    lu = [list(row) for row in matrix]
    pivots = list(range(n))
    for j in range(n):
        column = [lu[i][j] for i in range(n)]
        for i in range(n):
            column[i] -= _total(lu[i][k] * column[k] for k in range(min(i, j)))
            lu[i][j] = column[i]
        p = j
        for i in range(j + 1, n):
            if abs(column[i]) > abs(column[p]):
                p = i
        if p != j:
            lu[p], lu[j] = lu[j], lu[p]
            pivots[p], pivots[j] = pivots[j], pivots[p]
        if lu[j][j] != 0:
            for i in range(j + 1, n):
                lu[i][j] = lu[i][j] / lu[j][j]
    if any(lu[j][j] == 0 for j in range(n)):
        raise _Singular
    solution = [[1.0 if pivots[i] == j else 0.0 for j in range(n)] for i in range(n)]
    for k in range(n):
        for i in range(k + 1, n):
            for j in range(n):
                solution[i][j] = solution[i][j] - solution[k][j] * lu[i][k]
    for k in range(n - 1, -1, -1):
        for j in range(n):
            solution[k][j] = solution[k][j] / lu[k][k]
        for i in range(k):
            for j in range(n):
                solution[i][j] = solution[i][j] - solution[k][j] * lu[i][k]
    return solution


def _squared_error(xs: Sequence[float], ys: Sequence[float], params: Params) -> float:
    a, b, c = params
    return _total((y - _law(a, b, c, x)) * (y - _law(a, b, c, x)) for x, y in zip(xs, ys, strict=True))


def _law(a: float, b: float, c: float, x: float) -> float:
    return a * _pow(x, -b) + c


def _total(values: Iterable[float]) -> float:
    """Left-to-right float sum from 0, as JavaScript's loops add (Python's sum() may compensate)."""
    total = 0.0
    for value in values:
        total += value
    return total


def _pow(base: float, exponent: float) -> float:
    try:
        return float(base**exponent)
    except OverflowError:
        return math.inf
    except ZeroDivisionError:
        return math.inf


def _exp(value: float) -> float:
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


def _clip(value: float, low: float, high: float) -> float:
    """Math.min(Math.max(low, value), high): NaN stays NaN."""
    return value if math.isnan(value) else min(max(low, value), high)


def _js_divide(numerator: float, denominator: float) -> float:
    if denominator != 0:
        return numerator / denominator
    if numerator == 0 or math.isnan(numerator):
        return math.nan
    return math.copysign(math.inf, numerator) * math.copysign(1.0, denominator)
