"""The train section: Marin's SimpleTrainConfig, less the hardware (that is ``resources``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from speedrun_operator.api.base import ApiModel

LrSchedule = Literal["cosine", "linear", "constant", "inv_sqrt", "inv"]


class BatchScheduleStep(ApiModel):
    """From ``startStep`` on, train with ``batchSize`` sequences per step."""

    start_step: int = Field(ge=0, description="First step at which this batch size applies.")
    batch_size: int = Field(ge=1, le=1_048_576, description="Sequences per step from startStep on.")


class TrainSpec(ApiModel):
    """Optimisation and schedule. Unset optional fields take Levanter's AdamConfig defaults, as in Marin."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.batchSize) != has(self.batchSchedule)",
                    "message": "train: set exactly one of batchSize or batchSchedule",
                }
            ]
        }
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
    weight_decay: float | None = Field(
        default=None, ge=0, le=10, description="AdamW weight decay. Default: 0.1."
    )
    beta1: float | None = Field(default=None, ge=0, lt=1, description="Adam beta1. Default: 0.9.")
    beta2: float | None = Field(default=None, ge=0, lt=1, description="Adam beta2. Default: 0.95.")
    epsilon: float | None = Field(default=None, gt=0, le=1, description="Adam epsilon. Default: 1e-8.")
    max_grad_norm: float | None = Field(
        default=None, gt=0, description="Gradient clipping by global norm. Default: 1.0."
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
    lr_schedule: LrSchedule | None = Field(default=None, description="LR decay shape. Default: cosine.")
    cycle_length: int | None = Field(default=None, ge=1, description="Steps per LR cycle (cyclic schedules).")
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
    seed: int = Field(default=0, ge=0, description="Random seed for init and data order. Default: 0.")

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

    def batch_sizes(self) -> list[tuple[int, int]]:
        """``(start_step, batch_size)`` pairs covering the run."""
        if self.batch_schedule is not None:
            return [(entry.start_step, entry.batch_size) for entry in self.batch_schedule]
        assert self.batch_size is not None
        return [(0, self.batch_size)]

    def batch_size_at(self, step: int) -> int:
        current = self.batch_sizes()[0][1]
        for start, size in self.batch_sizes():
            if start <= step:
                current = size
        return current

    def total_sequences(self) -> int:
        """Sequences seen over all steps, honouring a batch schedule."""
        pairs = self.batch_sizes()
        total = 0
        for index, (start, size) in enumerate(pairs):
            end = pairs[index + 1][0] if index + 1 < len(pairs) else self.steps
            total += max(0, min(end, self.steps) - start) * size
        return total
