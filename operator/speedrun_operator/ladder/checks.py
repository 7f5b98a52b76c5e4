"""What ``speedrun validate`` says about a valid ladder beyond its fields: whether the scaling board would
list it once it ran."""

from __future__ import annotations

from collections.abc import Sequence

from speedrun_operator.ladder.rungs import Rung
from speedrun_operator.runinfo import compute_run_info
from speedrun_operator.submissions.boards import SCALING_BOARD_MIN_HARDWARE_FLOPS

ESTIMATED_MFU = 0.5
"""Hardware FLOPs before a run are estimated as model FLOPs at this MFU (Marin's ladders reach about it)."""


def listing_warning(rungs: Sequence[Rung]) -> str | None:
    """A warning when no rung is expected to pass the scaling board's listing threshold, else None."""
    estimates = {rung.name: compute_run_info(rung.job.spec).model_flops / ESTIMATED_MFU for rung in rungs}
    if any(flops > SCALING_BOARD_MIN_HARDWARE_FLOPS for flops in estimates.values()):
        return None
    largest = max(estimates, key=lambda name: estimates[name])
    return (
        f"no rung is expected to use over {SCALING_BOARD_MIN_HARDWARE_FLOPS:.0e} hardware FLOPs (the "
        f"largest, {largest}, about {estimates[largest]:.2e} at {ESTIMATED_MFU:.0%} MFU): the scaling "
        "board will not list this ladder; add a larger rung to rank on it"
    )
