"""The model section: a named Marin preset, a full Llama config, or a preset with overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from speedrun_operator.api.base import ApiModel

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


@dataclass(frozen=True)
class LlamaShape:
    """A fully resolved Llama architecture: what Levanter's LlamaConfig is built from."""

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

    @property
    def actual_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden_dim // self.num_heads


def _positive(description: str) -> int | None:
    return Field(default=None, ge=1, le=1_048_576, description=description)


class ModelSpec(ApiModel):
    """A Levanter Llama model. Name a Marin preset, give every shape field, or a preset plus overrides."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.preset) || (has(self.seqLen) && has(self.hiddenDim) && "
                    "has(self.intermediateDim) && has(self.numHeads) && has(self.numKvHeads) && "
                    "has(self.numLayers))",
                    "message": "model: name a preset (e.g. llama_nano) or give seqLen, hiddenDim, "
                    "intermediateDim, numHeads, numKvHeads and numLayers",
                }
            ]
        }
    }

    preset: PresetName | None = Field(
        default=None, description="A Marin preset from experiments/llama.py; other fields here override it."
    )
    seq_len: int | None = _positive("Context length in tokens (Levanter seq_len).")
    hidden_dim: int | None = _positive("Model width.")
    intermediate_dim: int | None = _positive("MLP width (the GLU's inner dimension).")
    num_heads: int | None = _positive("Attention heads.")
    num_kv_heads: int | None = _positive("Key/value heads (grouped-query attention); must divide numHeads.")
    num_layers: int | None = _positive("Transformer blocks.")
    head_dim: int | None = _positive("Per-head width. Default: hiddenDim / numHeads.")
    activation: Activation = Field(default="silu", description="MLP activation. Default: silu.")
    rope_theta: float = Field(default=10000.0, gt=0, description="Rotary embedding base. Default: 10000.")
    tie_word_embeddings: bool = Field(default=False, description="Share input and output embeddings.")
    gradient_checkpointing: bool = Field(
        default=True, description="Recompute activations in the backward pass."
    )
    scan_layers: bool = Field(default=True, description="Scan over layers (faster compiles).")
    layer_norm_epsilon: float = Field(default=1e-5, gt=0, description="RMSNorm epsilon. Default: 1e-5.")
    initializer_range: float = Field(default=0.02, gt=0, description="Init std. Default: 0.02.")
    use_bias: bool = Field(default=False, description="Bias terms in linear layers.")

    @model_validator(mode="after")
    def _shape_is_consistent(self) -> ModelSpec:
        if self.preset is None:
            missing = [name for name in SHAPE_FIELDS if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    "without a preset every shape field is required; missing: "
                    + ", ".join(_camel(m) for m in missing)
                    + f". Or name a preset: {', '.join(PRESETS)}"
                )
        shape = self.resolve()
        if shape.head_dim is None and shape.hidden_dim % shape.num_heads:
            raise ValueError(
                f"hiddenDim {shape.hidden_dim} is not divisible by numHeads {shape.num_heads}; "
                "change one of them or set headDim"
            )
        if shape.num_heads % shape.num_kv_heads:
            raise ValueError(f"numKvHeads {shape.num_kv_heads} must divide numHeads {shape.num_heads}")
        return self

    def resolve(self) -> LlamaShape:
        base = dict(zip(SHAPE_FIELDS, PRESETS[self.preset], strict=True)) if self.preset else {}
        for name in SHAPE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                base[name] = value
        return LlamaShape(
            **base,
            head_dim=self.head_dim,
            activation=self.activation,
            rope_theta=self.rope_theta,
            tie_word_embeddings=self.tie_word_embeddings,
            gradient_checkpointing=self.gradient_checkpointing,
            scan_layers=self.scan_layers,
            layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
            use_bias=self.use_bias,
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
