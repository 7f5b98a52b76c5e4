"""The site's scaling fit, reproduced: a solver that stops once the squared error is under 1e-8 or after 200
iterations, whichever comes first, with the site's bounds. Its agreement with the site's own numbers on real
data is tests/unit/test_submissions_site_parity.py; these are its rules on small synthetic cases."""

from __future__ import annotations

import math

import pytest

from speedrun_operator.submissions.power_law import converged_fit
from speedrun_operator.submissions.site_fit import MAX_ITERATIONS, linear_fit, site_fit

pytestmark = pytest.mark.unit


def law(a: float, b: float, c: float, x: float) -> float:
    return float(a * x ** (-b) + c)


def test_an_easy_law_is_fitted_to_the_tolerance_before_the_iteration_cap() -> None:
    points = [(x, law(2.0, 0.05, 0.5, x)) for x in (1e1, 1e2, 1e3, 1e4)]
    fit = site_fit(points)
    assert fit is not None and not fit.stopped_at_cap and fit.iterations < MAX_ITERATIONS
    squared_error = sum((y - fit.law.predict(x)) ** 2 for x, y in points)
    assert squared_error <= 1e-8
    assert (fit.law.a, fit.law.b, fit.law.c) == pytest.approx((2.0, 0.05, 0.5), rel=1e-3)


def test_a_ladder_at_real_flops_stops_at_the_cap_short_of_the_optimum_the_converged_fit_finds() -> None:
    points = [(x, law(40.0, 0.2, 0.9, x)) for x in (1e17, 1e18, 1e19, 1e20)]
    fit = site_fit(points)
    assert fit is not None and fit.stopped_at_cap and fit.iterations == MAX_ITERATIONS
    converged = converged_fit(points)
    assert converged is not None and converged.c == pytest.approx(0.9, rel=1e-6)
    assert not math.isclose(fit.law.c, 0.9, rel_tol=1e-3)


def test_the_floor_is_bounded_by_the_best_bpb_and_the_exponent_by_two() -> None:
    fit = site_fit([(1e18, 1.2), (1e18, 1.1), (1e18, 1.0)])
    assert fit is not None
    assert 0 <= fit.law.c <= 0.999 * 1.0 and 1e-6 <= fit.law.b <= 2.0 and fit.law.a > 0


def test_three_usable_points_are_needed() -> None:
    assert site_fit([(1e18, 1.2), (1e19, 1.1)]) is None
    assert site_fit([(1e18, 1.2), (1e19, 1.1), (0.0, 1.0)]) is None  # FLOPs must be positive
    assert site_fit([(1e18, 1.2), (1e19, 1.1), (math.inf, 1.0)]) is None
    assert site_fit([(1e18, 1.2), (1e19, 1.1), (1e20, 1.0)]) is not None


def test_the_least_squares_line_is_the_sites() -> None:
    line = linear_fit([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)])
    assert line is not None and (line.slope, line.intercept, line.r2) == (2.0, 1.0, 1.0)
    assert linear_fit([(1.0, 1.0), (1.0, 2.0)]) is None  # one x: no line
    assert linear_fit([(1.0, 1.0)]) is None
