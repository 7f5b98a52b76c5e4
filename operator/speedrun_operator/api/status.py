"""SpeedrunJobStatus: the story of a run as ``kubectl get``/``describe``/``wait`` tell it."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from speedrun_operator.api.base import ApiModel, MutableApiModel, ShortText, Text, Url
from speedrun_operator.api.dataset import C4_EN_BPB, PALOMA_C4_EN


class Phase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"
    PROVISIONING = "Provisioning"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        """The run is over: no phase follows Succeeded or Failed."""
        return self in (Phase.SUCCEEDED, Phase.FAILED)


class ConditionType(StrEnum):
    ACCEPTED = "Accepted"
    CLUSTER_READY = "ClusterReady"
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"
    RESULTS_PUBLISHED = "ResultsPublished"
    SPEC_DRIFT = "SpecDrift"
    FITTED = "Fitted"
    """A SpeedrunLadder's rungs have a power-law fit."""
    ADMITTED = "Admitted"
    """Kueue admitted the run (only for a run with spec.queueName)."""


class Condition(ApiModel):
    """A condition in the Kubernetes API conventions."""

    type: ShortText = Field(description="Condition type, e.g. Accepted, Running, Complete, Failed.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: ShortText = Field(description="One CamelCase word a program can match on.")
    message: Text = Field(default="", description="What happened and what to do about it.")
    last_transition_time: ShortText = Field(description="When status last changed (RFC 3339).")
    observed_generation: int | None = Field(default=None, description="The spec generation this reflects.")


class RunInfo(ApiModel):
    """What the run will cost, computed from the spec exactly as Marin does."""

    parameters: int = Field(description="Trainable parameters (Levanter total_trainable_params).")
    parameters_display: ShortText = Field(description="Parameters, human readable (e.g. 22.8M).")
    vocab_size: int = Field(description="Tokenizer vocabulary size used for the counts.")
    flops_per_token: float = Field(description="Forward FLOPs per token (Levanter lm_flops_per_token).")
    total_tokens: int = Field(description="Tokens over the whole run: sequences x seqLen.")
    model_flops: float = Field(description="3 x flopsPerToken x totalTokens (forward + backward).")
    device_type: ShortText = Field(description="GPU or TPU type, or cpu.")
    num_chips: int = Field(description="Accelerator chips in the run.")
    peak_flops_per_chip: float = Field(description="Peak bf16 FLOP/s of one chip.")
    peak_flops: float = Field(description="Peak bf16 FLOP/s of all chips together.")
    estimated_seconds_at_50pct_mfu: float = Field(description="Rough training time if it reached 50% MFU.")


class Progress(ApiModel):
    """Training progress, as the trainer reports it (every few seconds at most)."""

    step: int = Field(description="Last completed step.")
    total_steps: int = Field(description="Steps in the run.")
    display: ShortText = Field(description="step/total (percent), for kubectl get.")
    loss: float | None = Field(default=None, description="Training loss at that step.")
    tokens_per_second: float | None = Field(default=None, description="Recent training throughput.")
    mfu: float | None = Field(default=None, description="Recent model FLOPs utilisation, percent.")
    eta_seconds: float | None = Field(default=None, description="Estimated seconds to the end of training.")
    updated_at: ShortText = Field(description="When the trainer sent this (RFC 3339).")


class Results(ApiModel):
    """The run's outcome, as written to speedrun_results.json."""

    eval_bpb: float | None = Field(
        default=None, description="Eval bits per byte on evalSet (the leaderboard metric)."
    )
    eval_bpb_display: ShortText | None = Field(
        default=None, description="evalBpb to 4 decimals, for kubectl get."
    )
    eval_set: ShortText | None = Field(default=None, description="Which validation set evalBpb comes from.")
    training_time: float = Field(description="Seconds of training steps (sum of per-step durations).")
    training_hardware_flops: float = Field(description="trainingTime x chips x peak FLOP/s.")
    model_flops: float = Field(description="Model FLOPs of the run.")
    total_tokens: int = Field(description="Tokens trained on.")
    mfu: float | None = Field(default=None, description="modelFlops / trainingHardwareFlops, percent.")
    results_url: Url = Field(description="Where speedrun_results.json is.")
    wandb_run_link: Url | None = Field(default=None, description="The W&B run, if logged online.")
    run_completion_timestamp: ShortText = Field(description="When training finished (UTC).")
    model_size: int | None = Field(default=None, description="Trainable parameters, as the run counted them.")
    code_digest: ShortText | None = Field(
        default=None, description="A custom model's code: sha256 over its files, sorted by path."
    )

    @classmethod
    def from_run_info(cls, info: Mapping[str, Any], results_url: str) -> Results:
        """The summary of a results file's run_info: Marin's C4 (en) bpb where it was evaluated, else the
        set the run evaluated (our trainer records it as eval_dataset/eval_bpb). Raises KeyError or
        ValueError when a required key is missing or not a number."""
        bpb = info.get(C4_EN_BPB)
        eval_set_seen: str | None = PALOMA_C4_EN
        if bpb is None:
            bpb, eval_set_seen = info.get("eval_bpb"), info.get("eval_dataset")
        hardware = float(info["training_hardware_flops"])
        model_flops = float(info["model_flops"])
        return cls(
            eval_bpb=None if bpb is None else float(bpb),
            eval_bpb_display=None if bpb is None else f"{float(bpb):.4f}",
            eval_set=eval_set_seen,
            training_time=float(info["training_time"]),
            training_hardware_flops=hardware,
            model_flops=model_flops,
            total_tokens=int(info["total_tokens"]),
            mfu=100.0 * model_flops / hardware if hardware > 0 else None,
            results_url=results_url,
            wandb_run_link=info.get("wandb_run_link") or None,
            run_completion_timestamp=str(info["run_completion_timestamp"]),
            model_size=int(info["model_size"]) if info.get("model_size") is not None else None,
            code_digest=(info.get("model_code") or {}).get("digest"),
        )


class Admission(ApiModel):
    """Where Kueue admitted the run: its ClusterQueue, the flavors of each pod set, and when."""

    cluster_queue: ShortText = Field(description="The ClusterQueue that admitted the run.")
    flavors: dict[ShortText, ShortText] = Field(
        default_factory=dict,
        max_length=16,
        description="Pod set (head, the worker group) -> the ResourceFlavor(s) Kueue assigned it.",
    )
    admitted_at: ShortText | None = Field(default=None, description="When Kueue admitted it (RFC 3339).")
    workload: ShortText = Field(description="Kueue's Workload for the run's RayJob.")


class SpeedrunJobStatus(MutableApiModel):
    """Observed state, written by the operator and the trainer. Never edit by hand."""

    phase: Phase = Field(
        default=Phase.PENDING,
        description="Pending, Queued, Provisioning, Running, Suspended, Succeeded or Failed.",
    )
    reason: ShortText | None = Field(default=None, description="Why the run is in this phase (CamelCase).")
    message: Text | None = Field(default=None, description="Human-readable detail for the phase.")
    observed_generation: int | None = Field(default=None, description="The spec generation last acted on.")
    conditions: list[Condition] = Field(default_factory=list, max_length=16, description="Conditions.")
    accelerator: ShortText | None = Field(default=None, description="e.g. 1xA100, v4-8, 2xv4-16.")
    run_info: RunInfo | None = Field(default=None, description="Parameters, tokens and FLOPs of the run.")
    ray_job_name: ShortText | None = Field(default=None, description="The KubeRay RayJob running this.")
    ray_cluster_name: ShortText | None = Field(default=None, description="Its current RayCluster.")
    dashboard_url: Url | None = Field(default=None, description="Ray dashboard of the current cluster.")
    logs_url: Url | None = Field(
        default=None,
        description="Where the trainer's log is kept, one file per attempt and host; it outlives the Ray "
        "cluster. Read it with: speedrun logs NAMESPACE/NAME.",
    )
    attempts: int | None = Field(default=None, description="Ray clusters started so far (1 + retries).")
    admission: Admission | None = Field(
        default=None, description="Kueue's admission of a queued run (spec.queueName), while admitted."
    )
    preemptions: int | None = Field(
        default=None,
        description="Times Kueue preempted the run for a higher-priority one; it resumes from its latest "
        "checkpoint when admitted again.",
    )
    start_time: ShortText | None = Field(default=None, description="When the run started (RFC 3339).")
    completion_time: ShortText | None = Field(default=None, description="When it succeeded or failed.")
    progress: Progress | None = Field(default=None, description="Training progress from the trainer.")
    results: Results | None = Field(default=None, description="Results, once published.")

    @property
    def settled(self) -> bool:
        """Nothing is left to do for the job: it failed, or it succeeded and its results are published."""
        return self.phase == Phase.FAILED or (self.phase == Phase.SUCCEEDED and self.results is not None)
