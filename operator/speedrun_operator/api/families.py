"""The model families a SpeedrunJob can train, as data: what Levanter calls each, its defaults where they
differ from Llama's, and which of the optional model fields it honours.

A field a family ignores is refused rather than passed on: Levanter would silently build a different model
than the file says, or (where its parameter count leaves the field out) report numbers for another model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FamilyName = Literal["llama", "qwen3", "olmo2", "mixtral"]

MOE_FIELDS = ("n_routed_experts", "num_experts_per_tok", "n_shared_experts", "lbl_coef", "rzl_coef")
"""Mixtral's mixture-of-experts fields; every other family is dense."""


@dataclass(frozen=True)
class Family:
    name: FamilyName
    levanter_config: str
    """Levanter's config class (``levanter.models``), registered under ``name``."""
    layer_norm_epsilon: float
    """The class's default RMSNorm epsilon."""
    refused: dict[str, str] = field(default_factory=dict)
    """Optional fields (snake_case) this family does not honour, each with the reason."""


_DENSE = {name: "only family mixtral has experts" for name in MOE_FIELDS}

FAMILIES: dict[str, Family] = {
    "llama": Family("llama", "LlamaConfig", 1e-5, refused=_DENSE),
    "qwen3": Family(
        "qwen3",
        "Qwen3Config",
        1e-5,
        refused={**_DENSE, "use_qk_norm": "qwen3 always normalises queries and keys"},
    ),
    "olmo2": Family(
        "olmo2",
        "Olmo2Config",
        1e-6,
        refused={
            **_DENSE,
            "head_dim": "Levanter's Olmo2Config has none (heads are hiddenDim / numHeads wide)",
            "hybrid_norm": "olmo2 always normalises the attention and MLP outputs",
            "use_qk_norm": "olmo2 always normalises queries and keys",
            "input_embedding_norm": "Levanter's Olmo2Config has none",
        },
    ),
    "mixtral": Family(
        "mixtral",
        "MixtralConfig",
        1e-6,
        refused={
            "head_dim": "Levanter's Mixtral attention ignores it (heads are hiddenDim / numHeads wide)",
            "hybrid_norm": "Levanter's Mixtral layers ignore it",
            "use_qk_norm": "Levanter's Mixtral attention ignores it",
            "input_embedding_norm": "Levanter's Mixtral parameter count leaves it out",
            "tie_word_embeddings": "Levanter's Mixtral parameter count assumes an untied LM head",
        },
    ),
}


def family_of_model_config(model_config: Mapping[str, Any]) -> FamilyName | None:
    """The family of a results file's ``model_config``: Marin records ``dataclasses.asdict`` of the Levanter
    config, with no type key, so each family is told by the fields only its class has. None for a config
    of none of these families (Mistral, Qwen2, Gemma, a submission's own class)."""
    keys = set(model_config)
    if "n_routed_experts" in keys:
        return "mixtral"
    if "attention_dropout" in keys:
        return "olmo2"
    if "use_sliding_window" in keys and "max_window_layers" not in keys:
        return "qwen3"
    if keys & _OTHER_FAMILIES_FIELDS or not {"num_kv_heads", "intermediate_dim"} <= keys:
        return None
    return "llama"


_OTHER_FAMILIES_FIELDS = {"sliding_window", "max_window_layers", "query_pre_attn_scalar", "attn_pdrop"}
"""Fields of Levanter's Mistral, Qwen2, Gemma and GPT-2 configs that Llama's lacks."""
