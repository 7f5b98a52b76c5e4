"""``train.optimizer`` and ``train.lrScheduleConfig``: every optimizer and LR schedule the pinned Levanter
registers, one model each, discriminated by ``type`` (Levanter's registry name).

Each model holds exactly the fields its Levanter dataclass adds to ``OptimizerConfig``, with Levanter's types
and defaults (a unit test that imports Levanter proves it). The fields every optimizer shares — the peak
learning rate, weight decay and the schedule (warmup, decay, minLrRatio, ...) — stay where they always were,
on ``train`` itself, and apply to whichever optimizer is chosen. This module imports nothing from Levanter.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, model_validator

from speedrun_operator.api.base import ApiModel, ShortText
from speedrun_operator.api.cel import rule

# One description (and one set of bounds) per field name, so a field means the same in every optimizer and
# the CRD's merged ``optimizer`` object can document it once. Defaults differ per optimizer.
_DOCS: dict[str, tuple[str, dict[str, Any]]] = {
    "beta1": ("Decay rate of the first-moment (momentum) average, per step.", {"ge": 0, "lt": 1}),
    "beta2": ("Decay rate of the second-moment average, per step.", {"ge": 0, "lt": 1}),
    "epsilon": ("Added to the update's denominator for numerical stability.", {"ge": 0}),
    "max_grad_norm": (
        "Clip gradients to this global L2 norm before the update; 0 turns clipping off.",
        {"ge": 0},
    ),
    "nesterov": ("Use Nesterov momentum.", {}),
    "adamc_weight_decay": (
        "AdamC: scale weight decay with the scheduled LR, keeping weightDecay / LR constant "
        "(Defazio 2025, arXiv:2506.02285).",
        {},
    ),
    "lr": (
        "Recorded in Levanter's config but not read when it builds the optimizer: the peak learning rate "
        "is train.learningRate.",
        {"gt": 0},
    ),
    "adam_lr": (
        "Peak learning rate of the AdamW part (embeddings, lm_head, norms and biases), on the same schedule "
        "as train.learningRate.",
        {"gt": 0},
    ),
    "momentum": ("Momentum of the orthogonalised updates.", {"ge": 0, "lt": 1}),
    "backend_steps": ("Newton-Schulz iterations that orthogonalise each update.", {"ge": 1, "le": 100}),
    "muon_epsilon": ("Stability epsilon of the Newton-Schulz orthogonalisation.", {"ge": 0}),
    "schedule_list": (
        "Recorded in Levanter's config but not read when it builds the optimizer.",
        {"max_length": 64},
    ),
    "merge_small_dims": ("Merge small dimensions of a tensor before preconditioning.", {}),
    "target_merged_dim_size": ("Target size of merged dimensions.", {"ge": 1}),
    "partition_grads_into_blocks": ("Split gradients into blocks of blockSize for preconditioning.", {}),
    "block_size": ("Block size for partitioned gradients.", {"ge": 1}),
    "mu_dtype": (
        "dtype of the momentum buffer (a NumPy dtype name such as float32 or bfloat16). "
        "Default: the parameters' dtype.",
        {"max_length": 32},
    ),
    "precond_dtype": (
        "dtype of the preconditioners (a NumPy dtype name). Default: float32.",
        {"max_length": 32},
    ),
}


def _field(name: str, default: Any, doc: str | None = None) -> Any:
    text, bounds = _DOCS.get(name, ("", {}))
    return Field(default=default, description=doc or text, **bounds)


def _bounded(default: Any, doc: str, **bounds: Any) -> Any:
    return Field(default=default, description=doc, **bounds)


class ClipUpdateNormSpec(ApiModel):
    """Clip the update's norm to its rolling mean + sigmaFactor standard deviations (Levanter's
    ClipUpdateNormConfig)."""

    rolling_interval_length: int = _bounded(
        128, "Steps in the rolling window of update norms.", ge=1, le=1_000_000
    )
    sigma_factor: float = _bounded(3.0, "Standard deviations above the mean that are allowed.", gt=0)


class SkipBadStepsSpec(ApiModel):
    """Skip a step whose loss or gradient norm exceeds the rolling mean + sigmaFactor standard deviations
    (Levanter's SkipStepConfig; {} turns it on with Levanter's defaults)."""

    rolling_interval_length: int = _bounded(
        128, "Steps in the rolling window of losses and gradient norms.", ge=1, le=1_000_000
    )
    sigma_factor: float = _bounded(6.0, "Standard deviations above the mean that count as bad.", gt=0)


class AdamSpec(ApiModel):
    """adam: AdamW, Marin's default (Levanter's AdamConfig)."""

    type: Literal["adam"]
    beta1: float = _field("beta1", 0.9)
    beta2: float = _field("beta2", 0.95)
    epsilon: float = _field("epsilon", 1e-8)
    max_grad_norm: float | None = _field("max_grad_norm", 1.0)
    nesterov: bool = _field("nesterov", False)
    update_rms_clipping: float | None = _bounded(
        None,
        "Clip each block's update to this RMS (as Adafactor and StableAdamW do); 1.0 is the usual value.",
        gt=0,
    )
    clip_update_norm: ClipUpdateNormSpec | None = _bounded(
        None, "Clip the update norm against its recent history (not together with updateRmsClipping)."
    )
    skip_bad_steps: SkipBadStepsSpec | None = _bounded(
        None, "Skip steps whose loss or gradient norm is far above recent ones. Default: off."
    )
    adamc_weight_decay: bool = _field("adamc_weight_decay", False)

    @model_validator(mode="after")
    def _one_update_clip(self) -> AdamSpec:
        if self.update_rms_clipping is not None and self.clip_update_norm is not None:
            raise ValueError("set at most one of updateRmsClipping or clipUpdateNorm (Levanter allows one)")
        return self


class AdamHSpec(ApiModel):
    """adamH: Adam whose linear weights keep their initial norm (Levanter's AdamHConfig); train.learningRate
    is the norm-relative step of those weights, adamLr the LR of the others."""

    type: Literal["adamH"]
    beta1: float = _field("beta1", 0.9)
    beta2: float = _field("beta2", 0.95)
    epsilon: float = _field("epsilon", 1e-8)
    max_grad_norm: float | None = _field("max_grad_norm", 1.0)
    nesterov: bool = _field("nesterov", False)
    adam_lr: float = _field("adam_lr", 6e-4)


class AdoptSpec(ApiModel):
    """adopt: ADOPT, Adam with the second moment of the previous step (Levanter's AdoptConfig)."""

    type: Literal["adopt"]
    beta1: float = _field("beta1", 0.9)
    beta2: float = _field("beta2", 0.95)
    epsilon: float = _field("epsilon", 1e-6)
    max_grad_norm: float | None = _field("max_grad_norm", 1.0)
    schedule_list: list[ShortText] | None = _field("schedule_list", None)


class CautiousSpec(ApiModel):
    """cautious: Cautious AdamW, which masks update components whose sign disagrees with the gradient
    (Levanter's CautiousConfig)."""

    type: Literal["cautious"]
    beta1: float = _field("beta1", 0.95)
    beta2: float = _field("beta2", 0.95)
    gamma: float = _bounded(
        0.025, "Recorded in Levanter's config but not read when it builds Cautious.", ge=0
    )
    epsilon: float = _field("epsilon", 1e-8)
    max_grad_norm: float | None = _field("max_grad_norm", 1.0)
    adamc_weight_decay: bool = _field("adamc_weight_decay", False)


class KronSpec(ApiModel):
    """kron: PSGD Kron, a Kronecker-factored preconditioner (Levanter's KronConfig; its two sharding fields
    follow the trainer's device mesh and are not set here). The pinned Levanter trains it with
    memorySaveMode all_diag only."""

    type: Literal["kron"]
    beta1: float = _field("beta1", 0.9)
    max_grad_norm: float | None = _field("max_grad_norm", 1.0)
    normalize_grads: bool = _bounded(False, "Normalise each layer's gradient to unit norm first.")
    preconditioner_update_probability: float = _bounded(
        0.05,
        "Final probability of updating the preconditioner at a step (annealed from 1.0).",
        gt=0,
        le=1,
    )
    update_prob_flat_start: int = _bounded(
        500, "Steps at update probability 1.0 before annealing starts.", ge=0
    )
    max_size_triangular: int = _bounded(
        25000, "Largest dimension that gets a triangular (not diagonal) preconditioner.", ge=0
    )
    min_ndim_triangular: int = _bounded(
        2, "Fewest dimensions a tensor needs for triangular preconditioners.", ge=0
    )
    memory_save_mode: Literal["one_diag", "all_diag"] | None = _bounded(
        None,
        "one_diag: the largest dimension of each layer gets a diagonal preconditioner; all_diag: all do. "
        "Default: all triangular.",
    )
    preconditioner_lr: float = _bounded(0.1, "Learning rate of the preconditioner.", gt=0)
    preconditioner_init_scale: float = _bounded(1.0, "Initial scale of the preconditioner.", gt=0)
    mu_dtype: str | None = _field("mu_dtype", None)
    precond_dtype: str | None = _field("precond_dtype", None)
    precond_update_precision: Literal["bfloat16", "tensorfloat32", "float32"] | None = _bounded(
        "tensorfloat32", "Matmul precision of the preconditioner update."
    )
    precond_grads_precision: Literal["bfloat16", "tensorfloat32", "float32"] | None = _bounded(
        None, "Matmul precision of preconditioning the gradients. Default: JAX's default."
    )
    lax_map_scanned_layers: bool = _bounded(
        False, "Loop over scanned layers with lax.map instead of vmap (less memory)."
    )
    lax_map_batch_size: int = _bounded(8, "Batch size of that lax.map.", ge=1)
    merge_small_dims: bool = _field("merge_small_dims", True)
    target_merged_dim_size: int = _field("target_merged_dim_size", 8192)
    partition_grads_into_blocks: bool = _field("partition_grads_into_blocks", True)
    block_size: int = _field("block_size", 256)


class LionSpec(ApiModel):
    """lion: Lion, the sign of an interpolated momentum (Levanter's LionConfig)."""

    type: Literal["lion"]
    beta1: float = _field("beta1", 0.9)
    beta2: float = _field("beta2", 0.95)
    epsilon: float = _field("epsilon", 1e-8)
    max_grad_norm: float | None = _field("max_grad_norm", 1.0)


class MarsSpec(ApiModel):
    """mars: MARS, variance-reduced AdamW (Levanter's MarsConfig)."""

    type: Literal["mars"]
    beta1: float = _field("beta1", 0.95)
    beta2: float = _field("beta2", 0.99)
    gamma: float = _bounded(
        0.025, "Scale of the variance-reduction term (the gradient change since the last step).", ge=0
    )
    epsilon: float = _field("epsilon", 1e-8)
    max_grad_norm: float | None = _field("max_grad_norm", 1.0)


class MiniSpec(ApiModel):
    """mini: Adam-mini, one second-moment scalar per parameter block (Levanter's MiniConfig)."""

    type: Literal["mini"]
    lr: float = _field("lr", 0.02)
    beta1: float = _field("beta1", 0.9)
    beta2: float = _field("beta2", 0.95)
    epsilon: float = _field("epsilon", 1e-8)
    max_grad_norm: float = _field("max_grad_norm", 1.0)
    nesterov: bool = _field("nesterov", False)


class MuonSpec(ApiModel):
    """muon: Muon, orthogonalised momentum for linear layers and AdamW for the rest (Levanter's MuonConfig);
    train.learningRate is Muon's peak LR, adamLr AdamW's."""

    type: Literal["muon"]
    lr: float = _field("lr", 0.02)
    adam_lr: float = _field("adam_lr", 6e-4)
    momentum: float = _field("momentum", 0.95)
    nesterov: bool = _field("nesterov", True)
    backend_steps: int = _field("backend_steps", 5)
    adam_weight_decay: float | None = _bounded(
        None, "Weight decay of the AdamW part. Default: train.weightDecay.", ge=0
    )
    beta1: float = _field("beta1", 0.9)
    beta2: float = _field("beta2", 0.95)
    epsilon: float = _field("epsilon", 1e-8)
    muon_epsilon: float = _field("muon_epsilon", 1e-8)
    max_grad_norm: float = _field("max_grad_norm", 1.0)
    use_kimi_scaling: bool = _bounded(
        False, "Kimi's LR scaling, 0.2·sqrt(max(d_out, d_in)), so Adam-like LRs and weight decay apply."
    )


class MuonHSpec(ApiModel):
    """muonH: Muon whose linear weights keep their initial norm (Levanter's MuonHConfig); train.learningRate
    is the norm-relative step of those weights, adamLr the LR of the others."""

    type: Literal["muonH"]
    adam_lr: float = _field("adam_lr", 6e-4)
    momentum: float = _field("momentum", 0.95)
    nesterov: bool = _field("nesterov", True)
    backend_steps: int = _field("backend_steps", 5)
    beta1: float = _field("beta1", 0.9)
    beta2: float = _field("beta2", 0.95)
    epsilon: float = _field("epsilon", 1e-8)
    muon_epsilon: float = _field("muon_epsilon", 1e-8)
    max_grad_norm: float = _field("max_grad_norm", 1.0)


class RmsPropSpec(ApiModel):
    """rmsprop: RMSProp with momentum (Levanter's RMSPropMomentumConfig)."""

    type: Literal["rmsprop"]
    beta1: float = _field("beta1", 0.9)
    beta2: float = _field("beta2", 0.99)
    eps: float = _bounded(1e-30, "Added to the update's denominator for numerical stability.", ge=0)
    max_grad_norm: float | None = _field("max_grad_norm", 1.0)


class ScionSpec(ApiModel):
    """scion: Scion, norm-constrained orthogonalised updates for linear layers and signum for the rest
    (Levanter's ScionConfig)."""

    type: Literal["scion"]
    lr: float = _field("lr", 0.02)
    scion_to_signum_lr: float = _bounded(
        0.25, "LR of the signum part as a fraction of train.learningRate.", gt=0
    )
    momentum: float = _field("momentum", 0.95)
    backend_steps: int = _field("backend_steps", 10)
    beta1: float = _field("beta1", 0.9)
    scion_epsilon: float = _bounded(1e-8, "Stability epsilon of the orthogonalisation.", ge=0)
    max_grad_norm: float = _field("max_grad_norm", 1.0)


class SoapSpec(ApiModel):
    """soap: SOAP, Adam in the eigenbasis of a Shampoo preconditioner (Levanter's SoapConfig). Refused: the
    pinned Levanter cannot build its preconditioners under JAX 0.7."""

    type: Literal["soap"]
    beta1: float = _field("beta1", 0.95)
    beta2: float = _field("beta2", 0.95)
    shampoo_beta: float = _bounded(0.95, "Decay rate of the Shampoo preconditioner statistics.", ge=0, lt=1)
    epsilon: float = _field("epsilon", 1e-8)
    max_grad_norm: float | None = _field("max_grad_norm", 1.0)
    schedule_list: list[ShortText] | None = _field("schedule_list", None)
    precondition_frequency: int = _bounded(10, "Steps between preconditioner updates.", ge=1)
    max_precond_dim: int = _bounded(10000, "Largest dimension that gets a preconditioner.", ge=1)
    merge_small_dims: bool = _field("merge_small_dims", True)
    one_diag: bool = _bounded(False, "Precondition only one side of each matrix.")
    target_merged_dim_size: int = _field("target_merged_dim_size", 2048)
    mu_dtype: str | None = _field("mu_dtype", None)
    precond_dtype: str | None = _field("precond_dtype", None)
    partition_grads_into_blocks: bool = _field("partition_grads_into_blocks", True)
    block_size: int = _field("block_size", 256)


class SophiaHSpec(ApiModel):
    """sophia-h: Sophia with a Hutchinson estimate of the Hessian diagonal (Levanter's SophiaHConfig).
    Refused: the pinned Levanter's trainer cannot train it."""

    type: Literal["sophia-h"]
    update_interval: int = _bounded(10, "Steps between Hessian estimates.", ge=1)
    beta1: float = _field("beta1", 0.96)
    beta2: float = _field("beta2", 0.99)
    epsilon: float = _field("epsilon", 1e-12)
    clip_threshold: float | None = _bounded(1.0, "Clip each update component to this magnitude.", gt=0)
    rng_seed: int = _bounded(0, "Seed of the Hutchinson estimator's random vectors.", ge=0)
    gamma: float = _bounded(0.01, "Scale of the Hessian in the update's denominator.", ge=0)


OptimizerSpec = Annotated[
    AdamSpec
    | AdamHSpec
    | AdoptSpec
    | CautiousSpec
    | KronSpec
    | LionSpec
    | MarsSpec
    | MiniSpec
    | MuonSpec
    | MuonHSpec
    | RmsPropSpec
    | ScionSpec
    | SoapSpec
    | SophiaHSpec,
    Field(discriminator="type"),
]
OPTIMIZER_MODELS: dict[str, type[ApiModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model
    for model in get_args(get_args(OptimizerSpec)[0])
}
"""Optimizer models by Levanter registry name."""

PINNED_LEVANTER = "1.2.dev1644"


_CANNOT_TRAIN_SOPHIA = (
    f"Levanter {PINNED_LEVANTER}'s trainer cannot train sophia-h (the objective it hands Sophia unpacks the "
    "loss as a (loss, metrics) pair and fails at its first step); pick another optimizer"
)
_CANNOT_BUILD_SOAP = (
    f"Levanter {PINNED_LEVANTER}'s soap cannot build its preconditioners under JAX 0.7 (it asks the abstract "
    "mesh for its devices); pick another optimizer"
)
_CANNOT_BUILD_TRIANGULAR_KRON = (
    f"Levanter {PINNED_LEVANTER}'s kron cannot build triangular preconditioners under JAX 0.7 (it asks the "
    "abstract mesh for its devices); set memorySaveMode: all_diag"
)


def training_blocker(optimizer: ApiModel) -> tuple[str, str] | None:
    """(field, why) when the pinned Levanter cannot train with these settings, which a tiny run on the CPU
    shows: refused up front rather than after the hardware is up."""
    if isinstance(optimizer, SophiaHSpec):
        return "type", _CANNOT_TRAIN_SOPHIA
    if isinstance(optimizer, SoapSpec):
        return "type", _CANNOT_BUILD_SOAP
    if isinstance(optimizer, KronSpec) and optimizer.memory_save_mode != "all_diag":
        return "memorySaveMode", _CANNOT_BUILD_TRIANGULAR_KRON
    return None


def training_blocker_rules(optimizer: str) -> list[dict[str, str]]:
    """training_blocker as CEL rules, on the object holding ``optimizer`` (its field name)."""
    at = f"self.{optimizer}"
    return [
        rule(f"!has({at}) || {at}.type != 'sophia-h'", _CANNOT_TRAIN_SOPHIA, field=f".{optimizer}.type"),
        rule(f"!has({at}) || {at}.type != 'soap'", _CANNOT_BUILD_SOAP, field=f".{optimizer}.type"),
        rule(
            f"!has({at}) || {at}.type != 'kron' || "
            f"(has({at}.memorySaveMode) && {at}.memorySaveMode == 'all_diag')",
            _CANNOT_BUILD_TRIANGULAR_KRON,
            field=f".{optimizer}.memorySaveMode",
        ),
    ]


class ConstantScheduleSpec(ApiModel):
    """constant: the peak LR throughout (after warmup)."""

    type: Literal["constant"]


class CosineScheduleSpec(ApiModel):
    """cosine: cosine decay from the peak to minLrRatio * peak."""

    type: Literal["cosine"]
    exponent: float = _bounded(1.0, "Power the cosine decay is raised to.", gt=0)


class LinearScheduleSpec(ApiModel):
    """linear: linear decay from the peak to minLrRatio * peak."""

    type: Literal["linear"]


class InvSqrtScheduleSpec(ApiModel):
    """inv_sqrt: LR * min(1, 1/sqrt((step + warmup steps) / timescale)), floored at minLrRatio * peak."""

    type: Literal["inv_sqrt"]
    timescale: float = _bounded(10000.0, "Steps at which the decay begins.", gt=0)


class InvScheduleSpec(ApiModel):
    """inv: 1/t decay that reaches minLrRatio * peak at the end of the decay phase."""

    type: Literal["inv"]


class PowerScheduleSpec(ApiModel):
    """power: the Power scheduler, min(peak, batchSize * a * tokens^b) (arXiv:2408.13359)."""

    type: Literal["power"]
    batch_size: int | None = _bounded(
        None, "Sequences per step the token count uses. Default: train.batchSize.", ge=1
    )
    seq_length: int | None = _bounded(
        None, "Tokens per sequence the token count uses. Default: the training sequence length.", ge=1
    )
    a: float = _bounded(4.6, "Amplitude (must be positive).", gt=0)
    b: float = _bounded(-0.51, "Power-law exponent (must be negative).", lt=0)


LrScheduleSpec = Annotated[
    ConstantScheduleSpec
    | CosineScheduleSpec
    | LinearScheduleSpec
    | InvSqrtScheduleSpec
    | InvScheduleSpec
    | PowerScheduleSpec,
    Field(discriminator="type"),
]
LR_SCHEDULE_MODELS: dict[str, type[ApiModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model
    for model in get_args(get_args(LrScheduleSpec)[0])
}
"""LR schedule models by Levanter registry name."""
LR_SCHEDULE_NAMES = tuple(LR_SCHEDULE_MODELS)
