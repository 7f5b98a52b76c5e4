"""SpeedrunJob → Levanter ``TrainLmConfig``: a pure function, so the mapping is testable without training."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import jmp
from levanter.distributed import DistributedConfig, RayConfig
from levanter.main.train_lm import TrainLmConfig
from levanter.models.lm_model import LmConfig
from levanter.optim.model_averaging import EmaModelAveragingConfig
from levanter.schedule import ScheduleStep
from levanter.tracker import TrackerConfig
from levanter.trainer import TrainerConfig

from speedrun_operator import contract
from speedrun_operator.api import SpeedrunJobSpec, TrainSpec
from speedrun_operator.eval_sets import DEFAULT_VALIDATION_SETS, ValidationSets
from speedrun_operator.runinfo import seq_len_of
from speedrun_trainer.checkpointing import RecordingCheckpointerConfig
from speedrun_trainer.dataset import data_config, tokenizer_for
from speedrun_trainer.model_families import levanter_model_config
from speedrun_trainer.multihost import HostSlot
from speedrun_trainer.optimizers import optimizer_config
from speedrun_trainer.paths import RunPaths

MIXED_PRECISION = "p=f32,c=bfloat16"
"""Marin's policy: parameters and optimizer state in fp32, compute in bf16."""
TIME_BASED_CHECKPOINT_INTERVAL = timedelta(minutes=10)


def build_train_config(
    spec: SpeedrunJobSpec,
    paths: RunPaths,
    run_id: str,
    trackers: Sequence[TrackerConfig],
    step_sink: str,
    start_ray: bool = True,
    default_validation: ValidationSets = DEFAULT_VALIDATION_SETS,
    host: HostSlot | None = None,
    model: LmConfig | None = None,
) -> TrainLmConfig:
    """``step_sink`` names the sink (see ``step_tracker.registered_sink``) that records each checkpointed step
    before its checkpoint is saved. With ``start_ray`` Levanter joins the Ray cluster in RAY_ADDRESS (KubeRay
    sets it) or starts a local one; without, the caller has started Ray already. ``default_validation`` is
    evaluated when the job names no validation sets. ``host``: this process's slot among CPU hosts standing
    in for a slice (a TPU slice's hosts find theirs in their environment). ``model``: a custom model's
    config, built by its code (``model_code``)."""
    train = spec.train
    return TrainLmConfig(
        data=data_config(spec.dataset, paths.caches, default_validation),
        model=model if model is not None else model_config(spec),
        optimizer=optimizer_config(train, seq_len_of(spec)),
        trainer=TrainerConfig(
            id=run_id,
            seed=train.seed,
            mp=jmp.get_policy(MIXED_PRECISION),
            train_batch_size=batch_size(train),
            num_train_steps=train.steps,
            steps_per_eval=train.steps_per_eval,
            max_eval_batches=train.max_eval_batches,
            model_averaging=EmaModelAveragingConfig(beta=train.ema_beta)
            if train.ema_beta is not None
            else None,
            tracker=tuple(trackers),
            log_dir=paths.log_dir,
            checkpointer=checkpointer_config(train, paths, step_sink),
            distributed=distributed_config(spec, host),
            ray=RayConfig(auto_start_cluster=start_ray),
            require_accelerator=spec.resources.cpu is None,
        ),
        z_loss_weight=train.z_loss_weight or 0.0,
        data_seed=train.data_seed,
    )


def distributed_config(spec: SpeedrunJobSpec, host: HostSlot | None) -> DistributedConfig:
    """JAX's distributed initialisation for several hosts only: a single host must skip it (see
    ``Placement.multihost``)."""
    multihost = contract.placement(spec.resources).multihost
    if host is None:
        return DistributedConfig(initialize_jax_distributed=multihost)
    return DistributedConfig(
        coordinator_address=host.coordinator,
        num_processes=host.num_processes,
        process_id=host.process_id,
        initialize_jax_distributed=multihost,
    )


def model_config(spec: SpeedrunJobSpec) -> LmConfig:
    return levanter_model_config(spec.model.resolve(), seq_len_of(spec), tokenizer_for(spec.dataset))


def batch_size(train: TrainSpec) -> int | list[ScheduleStep[int]]:
    if train.batch_schedule is None:
        assert train.batch_size is not None
        return train.batch_size
    return [ScheduleStep(start=entry.start_step, value=entry.batch_size) for entry in train.batch_schedule]


def checkpointer_config(train: TrainSpec, paths: RunPaths, step_sink: str) -> RecordingCheckpointerConfig:
    keep = [{"every": train.steps_per_checkpoint}] if train.steps_per_checkpoint is not None else []
    return RecordingCheckpointerConfig(
        sink=step_sink,
        base_path=paths.checkpoints,
        # The path is the job's, not the attempt's: a restarted attempt (new run id or not) resumes from it.
        append_run_id_to_base_path=False,
        save_interval=TIME_BASED_CHECKPOINT_INTERVAL,
        keep=keep,
    )
