"""The leaderboard's rankings: runs by C4-EN bpb, scaling groups by the bpb their power law projects at 1e22
FLOPs, as the speedrun site ranks them. The data here is synthetic, from laws with known a, b and c."""

from __future__ import annotations

import pytest

from speedrun_operator.submissions.leaderboard import RunsJsonAuthor, RunsJsonEntry
from speedrun_operator.submissions.ranking import (
    TARGET_FLOPS,
    FlopsAxis,
    PowerLaw,
    fit_power_law,
    group_name,
    rank_groups,
    rank_runs,
)

pytestmark = pytest.mark.unit

FLOPS = [1e17, 1e18, 1e19, 1e20, 1e21]


def law(a: float, b: float, c: float, flops: float) -> float:
    return a * float(flops ** (-b)) + c


def entry(
    run_name: str, model_flops: float, bpb: float | None, hardware_flops: float = 1e19
) -> RunsJsonEntry:
    return RunsJsonEntry(
        run_name=run_name,
        results_filepath=f"experiments/speedrun/{run_name}",
        author=RunsJsonAuthor(name="A. Researcher", affiliation="Lab", url=None),
        model_size=1000,
        training_hardware_flops=hardware_flops,
        training_time=60.0,
        model_flops=model_flops,
        eval_paloma_c4_en_bpb=bpb,
        wandb_link=None,
        run_completion_timestamp="2026-11-25 21:19:03 UTC",
        description="synthetic",
    )


def test_the_fit_recovers_a_known_law_and_projects_it_to_1e22() -> None:
    a, b, c = 250.0, 0.15, 0.8
    fit = fit_power_law([(x, law(a, b, c, x)) for x in FLOPS])
    assert fit is not None
    assert fit.a == pytest.approx(a, rel=1e-4)
    assert fit.b == pytest.approx(b, rel=1e-4)
    assert fit.c == pytest.approx(c, rel=1e-4)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.predict(TARGET_FLOPS) == pytest.approx(law(a, b, c, TARGET_FLOPS), rel=1e-6)
    assert law(a, b, c, TARGET_FLOPS) == pytest.approx(0.92530, rel=1e-5)


def test_three_runs_are_enough_for_a_fit_and_two_are_not() -> None:
    a, b, c = 40.0, 0.1, 0.6
    three = fit_power_law([(x, law(a, b, c, x)) for x in FLOPS[:3]])
    assert three is not None and three.predict(1e19) == pytest.approx(law(a, b, c, 1e19), rel=1e-6)
    assert fit_power_law([(x, law(a, b, c, x)) for x in FLOPS[:2]]) is None


def test_points_without_flops_or_bpb_do_not_count_nor_do_repeated_flops() -> None:
    assert fit_power_law([(0.0, 1.2), (1e18, 0.0), (1e19, 1.1), (1e20, 1.0)]) is None
    assert fit_power_law([(1e19, 1.2), (1e19, 1.1), (1e20, 1.0)]) is None


def test_the_floor_stays_below_the_best_bpb_as_the_site_bounds_it() -> None:
    """Data with no curvature would pull c above the data; the site caps c at 0.999 x the best bpb."""
    fit = fit_power_law([(1e18, 1.3), (1e19, 1.2), (1e20, 1.1), (1e21, 1.0)])
    assert isinstance(fit, PowerLaw)
    assert 0.0 <= fit.c <= 0.999 * 1.0 and 0 < fit.b <= 2.0


def test_runs_rank_by_bpb_lowest_first_and_runs_without_one_come_last() -> None:
    runs = [entry("b", 1e18, 1.2), entry("none", 1e18, None), entry("a", 1e18, 0.9), entry("c", 1e18, 1.5)]
    assert [run["run_name"] for run in rank_runs(runs)] == ["a", "b", "c", "none"]


def test_a_group_is_the_parent_folder_of_its_runs() -> None:
    assert group_name("adamw_llama_scaling/130m") == "adamw_llama_scaling"
    assert group_name("hackable_transformer_attn_gate/lr_x1/130m") == "hackable_transformer_attn_gate/lr_x1"
    assert group_name("llama_75m") is None


def test_groups_rank_by_projected_bpb_at_1e22_not_by_their_best_run() -> None:
    """'steep' is worse than 'flat' at every FLOPs they ran but scales better: it leads at 1e22."""
    flat = [entry(f"flat/{i}", x, law(1.0, 0.01, 0.2, x)) for i, x in enumerate(FLOPS)]
    steep = [entry(f"steep/{i}", x, law(500.0, 0.15, 0.5, x)) for i, x in enumerate(FLOPS)]
    pair = [entry("pair/1", 1e18, 1.0), entry("pair/2", 1e19, 0.95)]
    solo = [entry("solo", 1e18, 0.5)]
    assert all(law(1.0, 0.01, 0.2, x) < law(500.0, 0.15, 0.5, x) for x in FLOPS)

    groups = rank_groups([*pair, *flat, *solo, *steep])

    assert [group.name for group in groups] == ["steep", "flat", "pair"]
    steep_rank, flat_rank, pair_rank = groups
    assert steep_rank.projected_bpb == pytest.approx(law(500.0, 0.15, 0.5, TARGET_FLOPS), rel=1e-5)
    assert flat_rank.projected_bpb == pytest.approx(law(1.0, 0.01, 0.2, TARGET_FLOPS), rel=1e-5)
    assert (pair_rank.fit, pair_rank.projected_bpb, len(pair_rank.runs)) == (None, None, 2)


def test_groups_can_be_fitted_against_hardware_flops_instead() -> None:
    runs = [entry(f"g/{i}", 1e15, law(50.0, 0.1, 0.7, x), hardware_flops=x) for i, x in enumerate(FLOPS)]
    (by_model_flops,) = rank_groups(runs)
    assert by_model_flops.fit is None
    (group,) = rank_groups(runs, FlopsAxis.HARDWARE)
    assert group.projected_bpb == pytest.approx(law(50.0, 0.1, 0.7, TARGET_FLOPS), rel=1e-5)


def test_the_site_lists_a_group_once_a_run_used_over_3e20_hardware_flops() -> None:
    small = [entry(f"small/{i}", x, law(50.0, 0.1, 0.7, x), hardware_flops=3e20) for i, x in enumerate(FLOPS)]
    large = [*small[:-1], entry("small/big", 1e21, 0.9, hardware_flops=3.1e20)]
    assert not rank_groups(small)[0].on_scaling_board
    assert rank_groups(large)[0].on_scaling_board
