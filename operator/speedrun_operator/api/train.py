"""The train section: Marin's SimpleTrainConfig, less the hardware (that is ``resources``).

The scalars (learningRate, weightDecay, beta1, ...) mean what they mean in SimpleTrainConfig: with no
``optimizer`` the run uses AdamW (Levanter's AdamConfig) built from them. ``optimizer`` picks any optimizer
Levanter registers and holds that optimizer's own fields. The fields every Levanter optimizer shares — the
peak learningRate, weightDecay and the LR schedule (warmup, decay, rewarmup, minLrRatio, lrSchedule,
cycleLength, cycles, weightDecayModules, defaultWeightDecayMask) — stay here and apply to whichever
optimizer runs; unset, they take that optimizer's Levanter default (weight decay is 0 for muon, mini, scion
and soap). The AdamW-only scalars beta1, beta2, epsilon and maxGradNorm belong to the default optimizer:
with ``optimizer`` set, give them inside it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from speedrun_operator.api.base import ApiModel, ShortText
from speedrun_operator.api.cel import rule, validations
from speedrun_operator.api.optimizers import LrScheduleSpec, OptimizerSpec, training_blocker_rules

LrSchedule = Literal["cosine", "linear", "constant", "inv_sqrt", "inv", "power"]
MARIN_DATA_SEED = 42
"""Marin's ``default_speedrun`` shuffles the data with seed 42, apart from the model's seed."""
_ADAMW_SCALARS = ("beta1", "beta2", "epsilon", "max_grad_norm")


class BatchScheduleStep(ApiModel):
    """From ``startStep`` on, train with ``batchSize`` sequences per step."""

    start_step: int = Field(ge=0, description="First step at which this batch size applies.")
    batch_size: int = Field(ge=1, le=1_048_576, description="Sequences per step from startStep on.")


class TrainSpec(ApiModel):
    """Optimisation and schedule. Unset optional fields take Levanter's AdamConfig defaults, as in Marin."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            rule(
                "has(self.batchSize) != has(self.batchSchedule)",
                "train: set exactly one of batchSize or batchSchedule",
            ),
            *(
                rule(
                    f"!has(self.optimizer) || !has(self.{alias})",
                    f"{alias} is the default AdamW's; with train.optimizer set, give {alias} inside "
                    "train.optimizer",
                    field=f".{alias}",
                )
                for alias in map(to_camel, _ADAMW_SCALARS)
            ),
            rule(
                "!(has(self.lrSchedule) && has(self.lrScheduleConfig))",
                "train: set lrSchedule or lrScheduleConfig, not both",
            ),
            rule(
                "!has(self.batchSchedule) || self.batchSchedule[0].startStep == 0",
                "the first entry must start at step 0",
                field=".batchSchedule",
            ),
            rule(
                "!has(self.batchSchedule) || (self.batchSchedule.map(e, e.startStep).isSorted() && "
                "self.batchSchedule.all(a, self.batchSchedule.exists_one(b, b.startStep == a.startStep)))",
                "startStep values must strictly increase",
                field=".batchSchedule",
            ),
            *training_blocker_rules("optimizer"),
        )
    }

    batch_size: int | None = Field(default=None, ge=1, le=1_048_576, description="Sequences per step.")
    batch_schedule: list[BatchScheduleStep] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Batch size that changes during training; the first entry starts at step 0.",
    )
    steps: int = Field(ge=1, le=100_000_000, description="Number of training steps (num_train_steps).")
    learning_rate: float = Field(gt=0, le=10, description="Peak learning rate.")
    optimizer: OptimizerSpec | None = Field(
        default=None,
        description="The optimizer, by Levanter's registry name in type, with its own fields. "
        "Default: AdamW from the scalars here (beta1, beta2, epsilon, maxGradNorm).",
    )
    weight_decay: float | None = Field(
        default=None,
        ge=0,
        le=10,
        description="Weight decay (decoupled, as AdamW's). Default: the optimizer's, 0.1 for AdamW.",
    )
    beta1: float | None = Field(
        default=None, ge=0, lt=1, description="AdamW beta1 (no optimizer set only). Default: 0.9."
    )
    beta2: float | None = Field(
        default=None, ge=0, lt=1, description="AdamW beta2 (no optimizer set only). Default: 0.95."
    )
    epsilon: float | None = Field(
        default=None, gt=0, le=1, description="AdamW epsilon (no optimizer set only). Default: 1e-8."
    )
    max_grad_norm: float | None = Field(
        default=None,
        gt=0,
        description="AdamW gradient clipping by global norm (no optimizer set only). Default: 1.0.",
    )
    warmup: float | None = Field(
        default=None,
        ge=0,
        description="Warmup: a fraction of steps when <= 1, else a step count. Default: 0.01.",
    )
    decay: float | None = Field(
        default=None, ge=0, description="Decay phase: a fraction of steps when <= 1, else a step count."
    )
    rewarmup: float | None = Field(
        default=None, ge=0, description="Re-warmup at each cycle (fraction or steps)."
    )
    min_lr_ratio: float | None = Field(
        default=None, ge=0, le=1, description="Final LR as a fraction of the peak. Default: 0.1."
    )
    lr_schedule: LrSchedule | None = Field(
        default=None,
        description="LR decay shape, with Levanter's parameters for it. Default: cosine. "
        "lrScheduleConfig sets the shape's parameters too.",
    )
    lr_schedule_config: LrScheduleSpec | None = Field(
        default=None,
        description="LR decay shape and its parameters (cosine exponent, inv_sqrt timescale, power a and b), "
        "instead of lrSchedule.",
    )
    cycle_length: int | None = Field(default=None, ge=1, description="Steps per LR cycle (cyclic schedules).")
    cycles: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Number of equal LR cycles (instead of cycleLength). Default: one.",
    )
    weight_decay_modules: list[ShortText] | None = Field(
        default=None,
        max_length=64,
        description="Decay only parameters whose path contains one of these strings (Levanter's "
        "weight_decay_modules). Default: all but norms, embeddings and biases.",
    )
    default_weight_decay_mask: bool | None = Field(
        default=None,
        description="Also decay what Levanter's default mask decays when weightDecayModules is set "
        "(true), or never (false). Default: only without weightDecayModules.",
    )
    z_loss_weight: float | None = Field(default=None, ge=0, description="Weight of the z-loss on the logits.")
    ema_beta: float | None = Field(default=None, gt=0, lt=1, description="EMA of the weights, if set.")
    steps_per_eval: int = Field(
        default=1000, ge=1, description="Evaluate every this many steps. Default: 1000."
    )
    max_eval_batches: int | None = Field(
        default=None, ge=1, description="Cap on eval batches per evaluation."
    )
    steps_per_checkpoint: int | None = Field(
        default=None, ge=1, description="Checkpoint every this many steps. Default: every 10 minutes."
    )
    seq_len: int | None = Field(
        default=None, ge=8, le=1_048_576, description="Training sequence length, if not the model's seqLen."
    )
    seed: int = Field(default=0, ge=0, description="Random seed of the model's initialisation. Default: 0.")
    data_seed: int = Field(
        default=MARIN_DATA_SEED,
        ge=0,
        description=f"Random seed of the data order, apart from seed (as Marin). Default: {MARIN_DATA_SEED}.",
    )

    @field_validator("batch_schedule")
    @classmethod
    def _schedule_is_ordered(cls, value: list[BatchScheduleStep] | None) -> list[BatchScheduleStep] | None:
        if value is None:
            return value
        if value[0].start_step != 0:
            raise ValueError(f"the first entry must start at step 0, not {value[0].start_step}")
        starts = [entry.start_step for entry in value]
        if starts != sorted(set(starts)):
            raise ValueError(f"startStep values must strictly increase, got {starts}")
        return value

    @model_validator(mode="after")
    def _one_batch_form(self) -> TrainSpec:
        if (self.batch_size is None) == (self.batch_schedule is None):
            raise ValueError("set exactly one of batchSize or batchSchedule")
        return self

    @model_validator(mode="after")
    def _one_lr_schedule_form(self) -> TrainSpec:
        if self.lr_schedule is not None and self.lr_schedule_config is not None:
            raise ValueError(
                f"set lrSchedule ({self.lr_schedule}) or lrScheduleConfig ({self.lr_schedule_config.type}), "
                "not both; lrScheduleConfig names the shape and its parameters"
            )
        if self.cycles is not None and self.cycle_length is not None:
            raise ValueError("set cycles or cycleLength, not both")
        return self

    def adamw_scalars_beside_optimizer(self) -> list[str]:
        """The AdamW-only scalars set beside an explicit ``optimizer`` (which they would contradict)."""
        if self.optimizer is None:
            return []
        return [name for name in _ADAMW_SCALARS if getattr(self, name) is not None]

    @property
    def schedule_name(self) -> str:
        """The LR schedule's kind, as Levanter names it."""
        if self.lr_schedule_config is not None:
            return self.lr_schedule_config.type
        return self.lr_schedule or "cosine"

    @property
    def optimizer_type(self) -> str:
        """Levanter's registry name of the optimizer that runs."""
        return self.optimizer.type if self.optimizer is not None else "adam"

    def batch_sizes(self) -> list[tuple[int, int]]:
        """``(start_step, batch_size)`` pairs covering the run."""
        if self.batch_schedule is not None:
            return [(entry.start_step, entry.batch_size) for entry in self.batch_schedule]
        assert self.batch_size is not None
        return [(0, self.batch_size)]

    def total_sequences(self) -> int:
        """Sequences seen over all steps, honouring a batch schedule."""
        pairs = self.batch_sizes()
        total = 0
        for index, (start, size) in enumerate(pairs):
            end = pairs[index + 1][0] if index + 1 < len(pairs) else self.steps
            total += max(0, min(end, self.steps) - start) * size
        return total
