"""Marin's ``speedrun_results.json``: ``{"runs": [{"run_info": {...}}]}``, sorted keys, indent 2.

``run_info`` holds every key Marin's speedrun writes (author, description, model_config, train_config,
tokenized_dataset, resources, model_size, total_tokens, model_flops, model_flops_per_token, num_devices,
num_chips, device_flops, training_time, training_hardware_flops, ``eval/paloma/c4_en/bpb``,
run_completion_timestamp, wandb_run_link), computed as Marin does, plus what makes a run comparable and
reproducible: vocab_size, eval_dataset and eval_bpb (the set actually evaluated), validation_sets (every set
evaluated, by name) and validation_sets_default (whether they were the default list), steps_completed,
attempts, image and config_digest; for a custom model, model_code (its module, class, source, the files and
their digest).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from speedrun_operator import storage
from speedrun_operator.api import SpeedrunJob, TrainSpec
from speedrun_operator.api.dataset import PALOMA_C4_EN
from speedrun_operator.runinfo import ModelCounts, compute_run_info, seq_len_of
from speedrun_operator.runinfo.keys import C4_EN_BPB
from speedrun_trainer.paths import RunPaths
from speedrun_trainer.step_log import RunHistory

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
MARIN_DEFAULT_STEPS_PER_EXPORT = 10000


@dataclass(frozen=True)
class RunOutcome:
    """What only the finished run knows."""

    history: RunHistory
    model_config: dict[str, Any]
    """Levanter's LlamaConfig as a dict (Marin: ``dataclasses.asdict`` with enums by name)."""
    num_devices: int
    eval_dataset: str | None
    completed_at: datetime
    wandb_run_link: str | None
    image: str | None
    optimizer_config: dict[str, Any] | None = None
    """Levanter's optimizer config as draccus serialises it (its registry name under ``type``)."""
    validation_sets: dict[str, list[str]] | None = None
    """The validation sets evaluated, by name: the job's own, the bundled one, or the default list."""
    model_counts: ModelCounts | None = None
    """A custom model's parameters and FLOPs per token, as its code counts them."""
    model_code: dict[str, Any] | None = None
    """A custom model's code: module, class, source, digest and files (``run_info.model_code``)."""


def config_digest(job: SpeedrunJob) -> str:
    canonical = json.dumps(job.spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def run_info(job: SpeedrunJob, outcome: RunOutcome) -> dict[str, Any]:
    spec = job.spec
    info = compute_run_info(spec, outcome.model_counts)
    chips = spec.resources.num_chips
    device_flops = spec.resources.peak_flops_per_device
    training_time = outcome.history.training_time
    eval_bpb = (
        outcome.history.final_eval(f"eval/{outcome.eval_dataset}/bpb") if outcome.eval_dataset else None
    )
    author = spec.author
    return {
        "author": {"name": author.name, "affiliation": author.affiliation, "url": author.url},
        "description": spec.description,
        "model_config": outcome.model_config,
        "train_config": train_config(spec.train, seq_len_of(spec), outcome.optimizer_config),
        "tokenized_dataset": spec.dataset.describe(),
        "resources": spec.resources.model_dump(mode="json", by_alias=False, exclude_none=True),
        "model_size": info.parameters,
        "total_tokens": info.total_tokens,
        "model_flops": info.model_flops,
        "model_flops_per_token": info.flops_per_token,
        "num_devices": outcome.num_devices,
        "num_chips": chips,
        "device_flops": device_flops,
        "training_time": training_time,
        "training_hardware_flops": training_time * chips * device_flops,
        # Marin reads this key from the W&B summary, which only has it when Paloma's c4_en was evaluated.
        C4_EN_BPB: eval_bpb if outcome.eval_dataset == PALOMA_C4_EN else None,
        "run_completion_timestamp": outcome.completed_at.strftime(TIMESTAMP_FORMAT),
        "wandb_run_link": outcome.wandb_run_link,
        "vocab_size": info.vocab_size,
        "eval_dataset": outcome.eval_dataset,
        "validation_sets": outcome.validation_sets,
        "validation_sets_default": spec.dataset.uses_default_validation,
        "eval_bpb": eval_bpb,
        "steps_completed": len(outcome.history.steps),
        "attempts": len(outcome.history.attempts),
        "image": outcome.image,
        "config_digest": config_digest(job),
        **({"model_code": outcome.model_code} if outcome.model_code is not None else {}),
    }


def train_config(
    train: TrainSpec, seq_len: int, optimizer_config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The train section under Marin's SimpleTrainConfig field names."""
    batch: int | list[dict[str, int]]
    if train.batch_schedule is not None:
        batch = [{"start": entry.start_step, "value": entry.batch_size} for entry in train.batch_schedule]
    else:
        assert train.batch_size is not None
        batch = train.batch_size
    return {
        "train_batch_size": batch,
        "num_train_steps": train.steps,
        "learning_rate": train.learning_rate,
        "seed": train.seed,
        "data_seed": train.data_seed,
        "weight_decay": train.weight_decay,
        "beta1": train.beta1,
        "beta2": train.beta2,
        "epsilon": train.epsilon,
        "max_grad_norm": train.max_grad_norm,
        "warmup": train.warmup,
        "decay": train.decay,
        "rewarmup": train.rewarmup,
        "lr_schedule": train.lr_schedule,
        "min_lr_ratio": train.min_lr_ratio,
        "cycle_length": train.cycle_length,
        "z_loss_weight": train.z_loss_weight,
        "ema_beta": train.ema_beta,
        "skip_bad_steps": False,
        "steps_per_eval": train.steps_per_eval,
        "steps_per_export": train.steps_per_checkpoint or MARIN_DEFAULT_STEPS_PER_EXPORT,
        "max_eval_batches": train.max_eval_batches,
        "train_seq_len": seq_len,
        "optimizer_config": optimizer_config,
    }


def results_document(job: SpeedrunJob, outcome: RunOutcome) -> str:
    return json.dumps({"runs": [{"run_info": run_info(job, outcome)}]}, indent=2, sort_keys=True) + "\n"


def write_submission(job: SpeedrunJob, outcome: RunOutcome, paths: RunPaths) -> dict[str, Any]:
    """Write the results file and the job's config beside it (a ready leaderboard folder); return run_info."""
    document = results_document(job, outcome)
    write_config(job, paths)
    storage.write_text_atomic(paths.results, document)
    info: dict[str, Any] = json.loads(document)["runs"][0]["run_info"]
    return info


def write_config(job: SpeedrunJob, paths: RunPaths) -> None:
    storage.write_text_atomic(paths.config, yaml.safe_dump(job.manifest(), sort_keys=False))
