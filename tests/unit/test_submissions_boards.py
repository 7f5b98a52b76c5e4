"""The site's boards on synthetic data, from laws with known a, b and c: runs by C4-EN bpb, target tracks by
their bpb band, scaling groups by the bpb the site's fit projects at 1e22 FLOPs, listed from 3e20 hardware
FLOPs; and our converged fit, which recovers the law the site's stopped solver only approaches."""

from __future__ import annotations

import pytest

from speedrun_operator.submissions.boards import (
    FlopsAxis,
    RunBoard,
    ScalingBoard,
    ScalingGroup,
    build_boards,
    scaling_group_name,
)
from speedrun_operator.submissions.leaderboard import RunsJsonAuthor, RunsJsonEntry
from speedrun_operator.submissions.power_law import TARGET_FLOPS, PowerLaw, converged_fit
from speedrun_operator.submissions.site_fit import site_fit
from speedrun_operator.submissions.site_tracks import Track

pytestmark = pytest.mark.unit

FLOPS = [1e17, 1e18, 1e19, 1e20, 1e21]


def law(a: float, b: float, c: float, flops: float) -> float:
    return a * float(flops ** (-b)) + c


def entry(
    run_name: str, model_flops: float, bpb: float | None, hardware_flops: float = 1e21
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


def scaling(entries: list[RunsJsonEntry], axis: FlopsAxis = FlopsAxis.MODEL) -> ScalingBoard:
    board = build_boards(entries, axis=axis).boards[-1]
    assert isinstance(board, ScalingBoard)
    return board


def all_runs(entries: list[RunsJsonEntry], tracks: tuple[Track, ...] | None = None) -> list[RunBoard]:
    boards = build_boards(entries, tracks) if tracks else build_boards(entries)
    return [board for board in boards.boards if isinstance(board, RunBoard)]


def test_the_converged_fit_recovers_a_known_law_and_projects_it_to_1e22() -> None:
    a, b, c = 250.0, 0.15, 0.8
    fit = converged_fit([(x, law(a, b, c, x)) for x in FLOPS])
    assert fit is not None
    assert fit.a == pytest.approx(a, rel=1e-4)
    assert fit.b == pytest.approx(b, rel=1e-4)
    assert fit.c == pytest.approx(c, rel=1e-4)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.predict(TARGET_FLOPS) == pytest.approx(law(a, b, c, TARGET_FLOPS), rel=1e-6)
    assert law(a, b, c, TARGET_FLOPS) == pytest.approx(0.92530, rel=1e-5)


def test_three_runs_are_enough_for_a_fit_and_two_are_not() -> None:
    a, b, c = 40.0, 0.1, 0.6
    three = converged_fit([(x, law(a, b, c, x)) for x in FLOPS[:3]])
    assert three is not None and three.predict(1e19) == pytest.approx(law(a, b, c, 1e19), rel=1e-6)
    assert converged_fit([(x, law(a, b, c, x)) for x in FLOPS[:2]]) is None
    assert site_fit([(x, law(a, b, c, x)) for x in FLOPS[:3]]) is not None
    assert site_fit([(x, law(a, b, c, x)) for x in FLOPS[:2]]) is None


def test_points_without_flops_or_bpb_do_not_count_nor_do_repeated_flops() -> None:
    assert converged_fit([(0.0, 1.2), (1e18, 0.0), (1e19, 1.1), (1e20, 1.0)]) is None
    assert converged_fit([(1e19, 1.2), (1e19, 1.1), (1e20, 1.0)]) is None


def test_the_floor_stays_below_the_best_bpb_as_the_site_bounds_it() -> None:
    """Data with no curvature would pull c above the data; the site caps c at 0.999 x the best bpb."""
    points = [(1e18, 1.3), (1e19, 1.2), (1e20, 1.1), (1e21, 1.0)]
    fit = converged_fit(points)
    assert isinstance(fit, PowerLaw)
    assert 0.0 <= fit.c <= 0.999 * 1.0 and 0 < fit.b <= 2.0
    site = site_fit(points)
    assert site is not None and 0.0 <= site.law.c <= 0.999 * 1.0 and 0 < site.law.b <= 2.0


def test_runs_rank_by_bpb_lowest_first_and_runs_without_one_come_last() -> None:
    runs = [entry("b", 1e18, 1.2), entry("a", 1e18, 0.9), entry("c", 1e18, 1.5), entry("a2", 1e18, 0.9)]
    board = all_runs(runs)[0]
    assert [run.entry["run_name"] for run in board.runs] == ["a", "a2", "b", "c"]  # ties in given order
    assert [run.rank for run in board.runs] == [1, 2, 3, 4]


def test_a_target_track_holds_the_runs_between_the_next_lower_target_and_its_own() -> None:
    tracks = (Track("all", "All"), Track("hi", "High", 1.5), Track("lo", "Low", 1.0), Track("scaling", "S"))
    runs = [
        entry(name, 1e18, bpb) for name, bpb in (("x", 1.6), ("y", 1.5), ("z", 1.2), ("w", 1.0), ("v", 0.7))
    ]
    by_id = {board.track.id: board for board in all_runs(runs, tracks)}
    assert [run.entry["run_name"] for run in by_id["hi"].runs] == ["z", "y"]
    assert (by_id["hi"].next_lower_bpb, by_id["lo"].next_lower_bpb) == (1.0, 0.0)
    assert [run.entry["run_name"] for run in by_id["lo"].runs] == ["v", "w"]
    assert len(by_id["all"].runs) == 5


def test_a_group_is_the_parent_folder_of_its_runs() -> None:
    assert scaling_group_name("adamw_llama_scaling/130m") == "adamw_llama_scaling"
    assert (
        scaling_group_name("hackable_transformer_attn_gate/lr_x1/130m")
        == "hackable_transformer_attn_gate/lr_x1"
    )
    assert [group.name for group in scaling([entry("llama_75m", 1e18, 1.2)]).groups] == []


def test_groups_rank_by_projected_bpb_at_1e22_not_by_their_best_run() -> None:
    """'steep' is worse than 'flat' at every FLOPs they ran but scales better: it leads at 1e22."""
    flat = [entry(f"flat/{i}", x, law(1.0, 0.01, 0.2, x)) for i, x in enumerate(FLOPS)]
    steep = [entry(f"steep/{i}", x, law(500.0, 0.15, 0.5, x)) for i, x in enumerate(FLOPS)]
    pair = [entry("pair/1", 1e18, 1.0), entry("pair/2", 1e19, 0.95)]
    solo = [entry("solo", 1e18, 0.5)]
    assert all(law(1.0, 0.01, 0.2, x) < law(500.0, 0.15, 0.5, x) for x in FLOPS)

    groups = scaling([*pair, *flat, *solo, *steep]).groups

    assert [group.name for group in groups] == ["steep", "flat", "pair"]
    steep_rank, flat_rank, pair_rank = groups
    assert steep_rank.converged_projection == pytest.approx(law(500.0, 0.15, 0.5, TARGET_FLOPS), rel=1e-5)
    assert flat_rank.converged_projection == pytest.approx(law(1.0, 0.01, 0.2, TARGET_FLOPS), rel=1e-5)
    assert steep_rank.site_projection is not None and flat_rank.site_projection is not None
    assert steep_rank.site_projection < flat_rank.site_projection
    assert (pair_rank.site, pair_rank.converged, len(pair_rank.runs)) == (None, None, 2)


def test_groups_can_be_fitted_against_hardware_flops_instead() -> None:
    runs = [entry(f"g/{i}", 1e15, law(50.0, 0.1, 0.7, x), hardware_flops=x) for i, x in enumerate(FLOPS)]
    (by_model_flops,) = scaling(runs).groups
    assert by_model_flops.converged is None
    (group,) = scaling(runs, FlopsAxis.HARDWARE).groups
    assert group.converged_projection == pytest.approx(law(50.0, 0.1, 0.7, TARGET_FLOPS), rel=1e-5)


def test_the_site_lists_a_group_once_a_run_used_over_3e20_hardware_flops() -> None:
    small = [entry(f"small/{i}", x, law(50.0, 0.1, 0.7, x), hardware_flops=3e20) for i, x in enumerate(FLOPS)]
    large = [*small[:-1], entry("small/big", 1e21, 0.9, hardware_flops=3.1e20)]
    assert [g.name for g in scaling(small).unlisted] == ["small"] and scaling(small).groups == []
    (listed,) = scaling(large).groups
    assert isinstance(listed, ScalingGroup) and listed.listed
