"""A resolved model → its family's Levanter config: LlamaConfig, Qwen3Config, Olmo2Config or MixtralConfig.

Each family's class takes only the fields it honours (the API refuses the others), so the config Levanter
trains, and the one the results record, is exactly what the SpeedrunJob says.
"""

from __future__ import annotations

from typing import Any

from levanter.layers.attention import AttentionBackend
from levanter.layers.rotary import DefaultRotaryEmbeddingsConfig
from levanter.models.llama import LlamaConfig
from levanter.models.lm_model import LmConfig
from levanter.models.mixtral import MixtralConfig
from levanter.models.olmo import Olmo2Config
from levanter.models.qwen import Qwen3Config
from levanter.utils.activation import ActivationFunctionEnum

from speedrun_operator.api import ModelShape


def levanter_model_config(shape: ModelShape, seq_len: int, tokenizer: str) -> LmConfig:
    """``tokenizer`` also becomes the reference checkpoint: otherwise the HF converter would fetch the
    family's default tokenizer from the hub."""
    common: dict[str, Any] = {
        "seq_len": seq_len,
        "hidden_dim": shape.hidden_dim,
        "intermediate_dim": shape.intermediate_dim,
        "num_layers": shape.num_layers,
        "num_heads": shape.num_heads,
        "num_kv_heads": shape.num_kv_heads,
        "activation_function": ActivationFunctionEnum(shape.activation),
        "initializer_range": shape.initializer_range,
        "layer_norm_epsilon": shape.layer_norm_epsilon,
        "tie_word_embeddings": shape.tie_word_embeddings,
        "gradient_checkpointing": shape.gradient_checkpointing,
        "scan_layers": shape.scan_layers,
        "use_bias": shape.use_bias,
        "upcast_attn": shape.upcast_attn,
        "attn_backend": AttentionBackend(shape.attn_backend) if shape.attn_backend else None,
        "rope": DefaultRotaryEmbeddingsConfig(theta=shape.rope_theta),
        "reference_checkpoint": tokenizer,
        "tokenizer": tokenizer,
    }
    if shape.family == "olmo2":
        return Olmo2Config(**common)
    if shape.family == "mixtral":
        assert shape.moe is not None
        return MixtralConfig(
            **common,
            n_routed_experts=shape.moe.n_routed_experts,
            num_experts_per_tok=shape.moe.num_experts_per_tok,
            n_shared_experts=shape.moe.n_shared_experts,
            lbl_coef=shape.moe.lbl_coef,
            rzl_coef=shape.moe.rzl_coef,
        )
    llama_options = {
        "head_dim": shape.head_dim,
        "hybrid_norm": shape.hybrid_norm,
        "input_embedding_norm": shape.input_embedding_norm,
    }
    if shape.family == "qwen3":
        return Qwen3Config(**common, **llama_options)
    return LlamaConfig(**common, **llama_options, use_qk_norm=shape.use_qk_norm)
