"""``spec.train`` → Levanter's ``OptimizerConfig``: the optimizer named in ``train.optimizer`` (AdamW from the
scalars when none is), with the shared learning rate, weight decay and LR schedule from ``train``."""

from __future__ import annotations

import dataclasses
from typing import Any

import draccus
import jax
from levanter.optim import AdamConfig, OptimizerConfig
from levanter.optim.clip_update_norm import ClipUpdateNormConfig
from levanter.optim.config import LrSchedule, PowerLrSchedule
from levanter.optim.skipstep import SkipStepConfig

from speedrun_operator.api import TrainSpec
from speedrun_operator.api.optimizers import ClipUpdateNormSpec, SkipBadStepsSpec

if not hasattr(jax, "tree_map"):
    # The pinned Levanter's mars and rmsprop call jax.tree_map, which JAX 0.6 removed; it was exactly this.
    jax.tree_map = jax.tree_util.tree_map  # type: ignore[attr-defined]

SHARED_FIELDS = (
    "weight_decay",
    "warmup",
    "decay",
    "rewarmup",
    "min_lr_ratio",
    "cycle_length",
    "cycles",
    "weight_decay_modules",
    "default_weight_decay_mask",
)
"""OptimizerConfig's own fields that ``train`` holds for every optimizer; passed only when set, so each
optimizer's Levanter default applies otherwise (learning_rate is always set)."""
ADAMW_SCALARS = ("beta1", "beta2", "epsilon", "max_grad_norm")
"""AdamConfig fields that ``train`` holds for the default optimizer (Marin's SimpleTrainConfig)."""


def optimizer_config(train: TrainSpec, seq_len: int) -> OptimizerConfig:
    shared: dict[str, Any] = {name: getattr(train, name) for name in SHARED_FIELDS}
    shared = {name: value for name, value in shared.items() if value is not None}
    schedule = lr_schedule(train, seq_len)
    if schedule is not None:
        shared["lr_schedule"] = schedule
    if train.optimizer is None:
        adamw = {name: getattr(train, name) for name in ADAMW_SCALARS if getattr(train, name) is not None}
        return AdamConfig(learning_rate=train.learning_rate, **shared, **adamw)
    spec = train.optimizer
    own = {name: levanter_value(getattr(spec, name)) for name in type(spec).model_fields if name != "type"}
    if "skip_bad_steps" in own and own["skip_bad_steps"] is None:
        own["skip_bad_steps"] = False  # Levanter's "off"
    optimizer_class = OptimizerConfig.get_choice_class(spec.type)
    config: OptimizerConfig = optimizer_class(learning_rate=train.learning_rate, **shared, **own)
    return config


def levanter_value(value: Any) -> Any:
    """A spec field's value as Levanter's dataclass field holds it."""
    if isinstance(value, ClipUpdateNormSpec):
        return ClipUpdateNormConfig(**value.model_dump(by_alias=False))
    if isinstance(value, SkipBadStepsSpec):
        return SkipStepConfig(**value.model_dump(by_alias=False))
    if isinstance(value, list):
        return list(value)
    return value


def lr_schedule(train: TrainSpec, seq_len: int) -> LrSchedule | str | None:
    """Levanter's ``lr_schedule``: the name for the kinds it takes by name (as Marin passes them), an
    ``LrSchedule`` when parameters are given or the kind (power) has no name form; None for the default."""
    config = train.lr_schedule_config
    if config is None:
        if train.lr_schedule == "power":
            return PowerLrSchedule(batch_size=_power_batch_size(train, None), seq_length=seq_len)
        return train.lr_schedule
    fields = config.model_dump(by_alias=False, exclude={"type"})
    if config.type == "power":
        fields["batch_size"] = _power_batch_size(train, fields["batch_size"])
        fields["seq_length"] = fields["seq_length"] or seq_len
    schedule: LrSchedule = LrSchedule.get_choice_class(config.type)(**fields)
    return schedule


def _power_batch_size(train: TrainSpec, given: int | None) -> int:
    if given is not None:
        return given
    # Validation refuses power with a batch schedule and no explicit batch size.
    assert train.batch_size is not None
    return train.batch_size


def serialised(config: OptimizerConfig) -> dict[str, Any]:
    """The optimizer as Levanter's config serialises it inside ``TrainLmConfig`` (draccus: its registry name
    under ``type``, then its fields), which is what Marin's results record as ``optimizer_config``. Field by
    field, by value: draccus cannot encode a few declared types (Kron's float-or-callable probability)."""
    fields = {field.name: _encoded(getattr(config, field.name)) for field in dataclasses.fields(config)}
    return {"type": str(OptimizerConfig.get_choice_name(type(config))), **fields}


def _encoded(value: Any) -> Any:
    if isinstance(value, LrSchedule):
        return {"type": LrSchedule.get_choice_name(type(value)), **draccus.encode(value)}
    return draccus.encode(value)
