"""The names in Marin's run_info: what the trainer writes and what a submission is checked for."""

from __future__ import annotations

from speedrun_operator.api.dataset import C4_EN_BPB

__all__ = ["C4_EN_BPB", "REQUIRED_RUN_INFO_KEYS", "RUN_INFO_KEYS"]

REQUIRED_RUN_INFO_KEYS = (
    "author",
    "description",
    "model_config",
    "train_config",
    "tokenized_dataset",
    "resources",
    "model_size",
    "total_tokens",
    "model_flops",
    "training_time",
    "training_hardware_flops",
    C4_EN_BPB,
    "run_completion_timestamp",
    "wandb_run_link",
)
"""The keys every Marin results file has had (later versions add more, which are optional on submission)."""

RUN_INFO_KEYS = frozenset(
    {*REQUIRED_RUN_INFO_KEYS, "model_flops_per_token", "num_devices", "num_chips", "device_flops"}
)
"""The keys Marin writes today, and so the trainer too."""
