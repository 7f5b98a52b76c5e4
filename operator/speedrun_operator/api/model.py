"""The model section: a model family (Llama by default), a named Marin preset or a full shape, and options;
or family ``custom``, a model the submitter's own code defines (``model_code``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from speedrun_operator.api.base import ApiModel
from speedrun_operator.api.cel import literal, or_default, rule, validations
from speedrun_operator.api.families import FAMILIES, MOE_FIELDS, FamilyName
from speedrun_operator.api.model_code import ModelCode

CUSTOM = "custom"
ModelFamily = Literal["llama", "qwen3", "olmo2", "mixtral", "custom"]
"""The Levanter families (``FamilyName``) and custom."""

PresetName = Literal[
    "llama_nano",
    "llama_30m",
    "llama_50m",
    "llama_75m",
    "llama_150m",
    "llama_300m",
    "llama_600m",
    "llama_1_4b",
    "llama_1_9b",
]
Activation = Literal["silu", "swish", "gelu", "gelu_new", "quick_gelu", "relu", "tanh"]
AttentionBackend = Literal["default", "nvte", "splash", "jax_flash", "vanilla"]

SHAPE_FIELDS = ("seq_len", "hidden_dim", "intermediate_dim", "num_heads", "num_kv_heads", "num_layers")

# Marin's experiments/llama.py presets: (seq_len, hidden, intermediate, heads, kv heads, layers).
PRESETS: dict[str, tuple[int, int, int, int, int, int]] = {
    "llama_nano": (512, 32, 128, 2, 2, 2),
    "llama_30m": (1024, 128, 448, 2, 2, 4),
    "llama_50m": (1024, 192, 448, 2, 2, 4),
    "llama_75m": (1024, 256, 896, 4, 4, 8),
    "llama_150m": (1024, 512, 1792, 8, 8, 6),
    "llama_300m": (1024, 768, 2688, 12, 12, 12),
    "llama_600m": (1024, 1024, 3584, 16, 8, 24),
    "llama_1_4b": (4096, 2048, 7168, 16, 8, 16),
    "llama_1_9b": (4096, 2048, 7168, 16, 8, 24),
}

# Levanter's MixtralConfig defaults.
DEFAULT_ROUTED_EXPERTS = 8
DEFAULT_EXPERTS_PER_TOKEN = 2
DEFAULT_SHARED_EXPERTS = 0
DEFAULT_LBL_COEF = 0.01
DEFAULT_RZL_COEF = 0.001


@dataclass(frozen=True)
class MoeShape:
    """Mixtral's experts. A coefficient of None turns that auxiliary loss off (Levanter's convention)."""

    n_routed_experts: int
    num_experts_per_tok: int
    n_shared_experts: int
    lbl_coef: float | None
    rzl_coef: float | None


@dataclass(frozen=True)
class ModelShape:
    """A fully resolved model: what the family's Levanter config is built from."""

    family: FamilyName
    seq_len: int
    hidden_dim: int
    intermediate_dim: int
    num_heads: int
    num_kv_heads: int
    num_layers: int
    head_dim: int | None
    activation: str
    rope_theta: float
    tie_word_embeddings: bool
    gradient_checkpointing: bool
    scan_layers: bool
    layer_norm_epsilon: float
    initializer_range: float
    use_bias: bool
    hybrid_norm: bool
    use_qk_norm: bool
    input_embedding_norm: bool
    upcast_attn: bool
    attn_backend: AttentionBackend | None
    moe: MoeShape | None
    """Set exactly when the family is mixtral."""

    @property
    def actual_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden_dim // self.num_heads


def shape_field(model: str, name: str) -> tuple[str, str]:
    """CEL of a shape field of the model at ``model`` (``self``, ``self.model``): when it is known (set, or
    from a known preset), and its value then."""
    index = SHAPE_FIELDS.index(name)
    alias, presets = f"{model}.{_camel(name)}", literal({p: shape[index] for p, shape in PRESETS.items()})
    known = f"(has({alias}) || (has({model}.preset) && {model}.preset in {presets}))"
    return known, f"(has({alias}) ? {alias} : {presets}[{model}.preset])"


def _model_rules(schema: dict[str, Any]) -> None:
    """ModelSpec's checks as CEL (the JSON schema's properties say which options are booleans)."""
    family = or_default("self.family", "llama")
    (hidden_known, hidden), (heads_known, heads), (kv_known, kv) = (
        shape_field("self", name) for name in ("hidden_dim", "num_heads", "num_kv_heads")
    )
    per_token, routed = (
        or_default("self.numExpertsPerTok", DEFAULT_EXPERTS_PER_TOKEN),
        or_default("self.nRoutedExperts", DEFAULT_ROUTED_EXPERTS),
    )
    custom = f"{family} == {literal(CUSTOM)}"
    rules = [
        rule(
            f"{custom} == has(self.code)",
            "code is the model of family custom and only of it: set family: custom with code, or remove code",
            field=".code",
        ),
        rule(
            f"{custom} || has(self.preset) || ("
            + " && ".join(f"has(self.{_camel(name)})" for name in SHAPE_FIELDS)
            + ")",
            "model: name a preset (e.g. llama_nano) or give "
            + ", ".join(_camel(name) for name in SHAPE_FIELDS),
        ),
        rule(
            f"!({hidden_known} && {heads_known}) || has(self.headDim) || {hidden} % {heads} == 0",
            "hiddenDim is not divisible by numHeads; change one of them",
            field=".hiddenDim",
        ),
        rule(
            f"!({heads_known} && {kv_known}) || {heads} % {kv} == 0",
            "numKvHeads must divide numHeads",
            field=".numKvHeads",
        ),
        rule(
            f"{family} != 'mixtral' || {per_token} <= {routed}",
            "numExpertsPerTok exceeds nRoutedExperts; lower numExpertsPerTok or raise nRoutedExperts",
            field=".numExpertsPerTok",
        ),
    ]
    for name_of_family, refusing in FAMILIES.items():
        for name, reason in refusing.refused.items():
            alias = _camel(name)
            on = f"self.{alias}" if schema["properties"][alias].get("type") == "boolean" else "true"
            fix = "set family: mixtral or remove it" if name in MOE_FIELDS else "remove it"
            rules.append(
                rule(
                    f"!has(self.{alias}) || !{on} || {family} != {literal(name_of_family)}",
                    f"{alias} is not an option of family {name_of_family}: {reason}; {fix}",
                    field=f".{alias}",
                )
            )
    schema.update(validations(*rules))


def _positive(description: str) -> int | None:
    return Field(default=None, ge=1, le=1_048_576, description=description)


def _coefficient(description: str) -> float | None:
    return Field(default=None, ge=0, le=100, description=description)


class ModelSpec(ApiModel):
    """A Levanter language model: a family (Llama by default), then a Marin preset, every shape field, or a
    preset plus overrides. Fields a family does not honour are refused."""

    model_config = ApiModel.model_config | {"json_schema_extra": _model_rules}

    family: ModelFamily = Field(
        default="llama",
        description="Levanter's model family: llama (LlamaConfig), qwen3 (Qwen3Config: Llama with QK-norm), "
        "olmo2 (Olmo2Config) or mixtral (MixtralConfig: mixture of experts); or custom, a model defined by "
        "the submitter's own code (code).",
    )
    code: ModelCode | None = Field(
        default=None,
        description="Family custom: the Python code defining the model (its LmConfig subclass), where it "
        "is and the fields its config is built with. Every other model field is then refused.",
    )
    preset: PresetName | None = Field(
        default=None,
        description="A Marin preset shape from experiments/llama.py (any family); other fields here "
        "override it.",
    )
    seq_len: int | None = _positive("Context length in tokens (Levanter seq_len).")
    hidden_dim: int | None = _positive("Model width.")
    intermediate_dim: int | None = _positive("MLP width (the GLU's inner dimension; per expert for mixtral).")
    num_heads: int | None = _positive("Attention heads.")
    num_kv_heads: int | None = _positive("Key/value heads (grouped-query attention); must divide numHeads.")
    num_layers: int | None = _positive("Transformer blocks.")
    head_dim: int | None = _positive("Per-head width (llama, qwen3). Default: hiddenDim / numHeads.")
    activation: Activation = Field(default="silu", description="MLP activation. Default: silu.")
    rope_theta: float = Field(default=10000.0, gt=0, description="Rotary embedding base. Default: 10000.")
    tie_word_embeddings: bool = Field(
        default=False, description="Share input and output embeddings (not mixtral)."
    )
    gradient_checkpointing: bool = Field(
        default=True, description="Recompute activations in the backward pass."
    )
    scan_layers: bool = Field(default=True, description="Scan over layers (faster compiles).")
    layer_norm_epsilon: float | None = Field(
        default=None,
        gt=0,
        description="RMSNorm epsilon. Default: the family's in Levanter, 1e-5 for llama and qwen3, "
        "1e-6 for olmo2 and mixtral.",
    )
    initializer_range: float = Field(default=0.02, gt=0, description="Init std. Default: 0.02.")
    use_bias: bool = Field(default=False, description="Bias terms in linear layers.")
    hybrid_norm: bool = Field(
        default=False,
        description="Also normalise the attention and MLP outputs before the residual add "
        "(llama, qwen3; Levanter hybrid_norm).",
    )
    use_qk_norm: bool = Field(
        default=False,
        description="RMSNorm on queries and keys (llama; qwen3 and olmo2 always have it).",
    )
    input_embedding_norm: bool = Field(
        default=False, description="RMSNorm after the input embeddings (llama, qwen3)."
    )
    upcast_attn: bool = Field(default=False, description="Compute attention scores in fp32.")
    attn_backend: AttentionBackend | None = Field(
        default=None,
        description="Attention implementation. Default: the accelerator's (nvte on GPU, splash on TPU, "
        "vanilla on CPU).",
    )
    n_routed_experts: int | None = Field(
        default=None, ge=1, le=4096, description="Experts per MoE layer (mixtral). Default: 8."
    )
    num_experts_per_tok: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="Routed experts each token goes through (mixtral); at most nRoutedExperts. Default: 2.",
    )
    n_shared_experts: int | None = Field(
        default=None,
        ge=0,
        le=4096,
        description="Experts every token goes through besides the routed ones (mixtral). Default: 0.",
    )
    lbl_coef: float | None = _coefficient(
        "Weight of the load-balancing auxiliary loss (mixtral); 0 turns it off. Default: 0.01."
    )
    rzl_coef: float | None = _coefficient(
        "Weight of the router z-loss (mixtral); 0 turns it off. Default: 0.001."
    )

    @model_validator(mode="after")
    def _shape_is_consistent(self) -> ModelSpec:
        if self.family == CUSTOM or self.code is not None:
            return self._custom_is_code_only()
        if self.preset is None:
            missing = [name for name in SHAPE_FIELDS if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    "without a preset every shape field is required; missing: "
                    + ", ".join(_camel(m) for m in missing)
                    + f". Or name a preset: {', '.join(PRESETS)}"
                )
        family = FAMILIES[self.family]
        for name, reason in family.refused.items():
            value = getattr(self, name)
            if value is not None and value is not False:
                fix = "set family: mixtral or remove it" if name in MOE_FIELDS else "remove it"
                raise ValueError(
                    f"{_camel(name)} {json.dumps(value)} is not an option of family {self.family}: "
                    f"{reason}; {fix}"
                )
        shape = self.resolve()
        if shape.head_dim is None and shape.hidden_dim % shape.num_heads:
            hint = " or set headDim" if "head_dim" not in family.refused else ""
            raise ValueError(
                f"hiddenDim {shape.hidden_dim} is not divisible by numHeads {shape.num_heads}; "
                f"change one of them{hint}"
            )
        if shape.num_heads % shape.num_kv_heads:
            raise ValueError(f"numKvHeads {shape.num_kv_heads} must divide numHeads {shape.num_heads}")
        moe = shape.moe
        if moe is not None and moe.num_experts_per_tok > moe.n_routed_experts:
            default = " (the default)" if self.n_routed_experts is None else ""
            raise ValueError(
                f"numExpertsPerTok {moe.num_experts_per_tok} exceeds nRoutedExperts "
                f"{moe.n_routed_experts}{default}; lower numExpertsPerTok or raise nRoutedExperts"
            )
        return self

    def _custom_is_code_only(self) -> ModelSpec:
        if self.code is None:
            raise ValueError("family custom needs code: {configMap: {name: ...}, module: M, configClass: C}")
        if self.family != CUSTOM:
            raise ValueError(f"code is the model of family custom, not {self.family}: set family: custom")
        for name in sorted(self.model_fields_set - {"family", "code"}):
            raise ValueError(
                f"{_camel(name)} is not an option of family custom: the code's config holds the whole model; "
                "put it in code.config"
            )
        return self

    @property
    def is_custom(self) -> bool:
        return self.family == CUSTOM

    def resolve(self) -> ModelShape:
        """The shape of a Levanter family's model. A custom model has none here: its code knows it."""
        if self.family == CUSTOM:
            raise ValueError("a model of family custom has no shape outside its code")
        base = dict(zip(SHAPE_FIELDS, PRESETS[self.preset], strict=True)) if self.preset else {}
        for name in SHAPE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                base[name] = value
        family = FAMILIES[self.family]
        return ModelShape(
            family=family.name,
            **base,
            head_dim=self.head_dim,
            activation=self.activation,
            rope_theta=self.rope_theta,
            tie_word_embeddings=self.tie_word_embeddings,
            gradient_checkpointing=self.gradient_checkpointing,
            scan_layers=self.scan_layers,
            layer_norm_epsilon=self.layer_norm_epsilon or family.layer_norm_epsilon,
            initializer_range=self.initializer_range,
            use_bias=self.use_bias,
            hybrid_norm=self.hybrid_norm,
            use_qk_norm=self.use_qk_norm,
            input_embedding_norm=self.input_embedding_norm,
            upcast_attn=self.upcast_attn,
            attn_backend=self.attn_backend,
            moe=self._moe() if self.family == "mixtral" else None,
        )

    def _moe(self) -> MoeShape:
        return MoeShape(
            n_routed_experts=_or(self.n_routed_experts, DEFAULT_ROUTED_EXPERTS),
            num_experts_per_tok=_or(self.num_experts_per_tok, DEFAULT_EXPERTS_PER_TOKEN),
            n_shared_experts=_or(self.n_shared_experts, DEFAULT_SHARED_EXPERTS),
            lbl_coef=_loss_coefficient(self.lbl_coef, DEFAULT_LBL_COEF),
            rzl_coef=_loss_coefficient(self.rzl_coef, DEFAULT_RZL_COEF),
        )

    def describe(self) -> str:
        """'llama_150m', 'qwen3 llama_150m', 'custom mixtral': the model in a few words."""
        if self.code is not None:
            return f"custom {self.code.module}.{self.code.config_class}"
        what = self.preset or f"custom {self.family}"
        return what if self.family == "llama" or self.preset is None else f"{self.family} {what}"


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _loss_coefficient(value: float | None, default: float) -> float | None:
    if value is None:
        return default
    return value or None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
