"""Marin's arithmetic: parameters, FLOPs, tokens and peak FLOP/s, as pure functions of a spec."""

from speedrun_operator.runinfo.compute import (
    ModelCounts,
    NeedsModelCode,
    compute_run_info,
    humanize,
    seq_len_of,
    total_tokens,
)
from speedrun_operator.runinfo.flops import flops_per_token, total_trainable_params

__all__ = [
    "ModelCounts",
    "NeedsModelCode",
    "compute_run_info",
    "flops_per_token",
    "humanize",
    "seq_len_of",
    "total_tokens",
    "total_trainable_params",
]
