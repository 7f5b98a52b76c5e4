"""Results as the trainer wrote them (Marin's speedrun_results.json) -> status.results."""

from __future__ import annotations

import json
from typing import Any

from speedrun_operator.api import Results
from speedrun_operator.runinfo.keys import C4_EN_BPB


def results_from_json(text: str, url: str) -> Results:
    """Read the last run of a results file; raises ValueError when it is not Marin's format."""
    try:
        run_info: dict[str, Any] = json.loads(text)["runs"][-1]["run_info"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"{url} is not a speedrun_results.json ({exc!r})") from None
    bpb = run_info.get(C4_EN_BPB)
    eval_set = "paloma/c4_en" if bpb is not None else run_info.get("eval_dataset")
    if bpb is None:
        bpb = run_info.get("eval_bpb")
    hardware = float(run_info["training_hardware_flops"])
    model_flops = float(run_info["model_flops"])
    return Results(
        eval_bpb=None if bpb is None else float(bpb),
        eval_set=eval_set,
        training_time=float(run_info["training_time"]),
        training_hardware_flops=hardware,
        model_flops=model_flops,
        total_tokens=int(run_info["total_tokens"]),
        mfu=100.0 * model_flops / hardware if hardware > 0 else None,
        results_url=url,
        wandb_run_link=run_info.get("wandb_run_link") or None,
        run_completion_timestamp=str(run_info["run_completion_timestamp"]),
    )
