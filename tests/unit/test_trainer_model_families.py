"""Each family's SpeedrunJob becomes that family's Levanter config, and the results' model_config says which
family it was the way Marin's results files do: the fields of the family's own class."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from levanter.layers.attention import AttentionBackend
from levanter.models.lm_model import LmConfig
from levanter.tracker import NoopConfig

from fixtures.trainer import JobFactory
from speedrun_operator.api.families import family_of_model_config
from speedrun_trainer.levanter_config import build_train_config
from speedrun_trainer.paths import RunPaths
from speedrun_trainer.runner import marin_model_config

pytestmark = pytest.mark.unit

PATHS = RunPaths(output="gs://bucket/runs", job="tiny", local_dir=Path("/tmp/speedrun/default/tiny"))


def built_model(tiny_job: JobFactory, **model: Any) -> Any:
    return build_train_config(tiny_job(model=model).spec, PATHS, "run-1", [NoopConfig()], "sink").model


def test_a_job_without_a_family_trains_a_llama(tiny_job: JobFactory) -> None:
    config = built_model(tiny_job)
    assert type(config).__name__ == "LlamaConfig"
    assert (config.hybrid_norm, config.use_qk_norm, config.input_embedding_norm) == (False, False, False)
    assert config.layer_norm_epsilon == 1e-5


def test_llamas_options_reach_levanter(tiny_job: JobFactory) -> None:
    config = built_model(
        tiny_job, hybridNorm=True, useQkNorm=True, inputEmbeddingNorm=True, upcastAttn=True,
        attnBackend="jax_flash", headDim=8,
    )  # fmt: skip
    assert (config.hybrid_norm, config.use_qk_norm, config.input_embedding_norm) == (True, True, True)
    assert config.upcast_attn is True and config.attn_backend is AttentionBackend.JAX_FLASH
    assert config.head_dim == 8
    assert config.attention_config().qk_norm is not None


def test_qwen3_is_levanters_qwen3_with_its_query_and_key_norms(tiny_job: JobFactory) -> None:
    config = built_model(tiny_job, family="qwen3", hybridNorm=True)
    assert type(config).__name__ == "Qwen3Config"
    assert config.hybrid_norm is True and config.attention_config().qk_norm is not None
    assert (config.hidden_dim, config.num_layers, config.seq_len) == (32, 1, 64)


def test_olmo2_is_levanters_olmo2_with_its_own_epsilon(tiny_job: JobFactory) -> None:
    config = built_model(tiny_job, family="olmo2", upcastAttn=True)
    assert type(config).__name__ == "Olmo2Config"
    assert config.layer_norm_epsilon == 1e-6 and config.upcast_attn is True
    assert config.reference_checkpoint == config.tokenizer  # never the hub's OLMo checkpoint


def test_mixtral_gets_its_experts_and_auxiliary_losses(tiny_job: JobFactory) -> None:
    config = built_model(
        tiny_job, family="mixtral", nRoutedExperts=4, numExpertsPerTok=1, nSharedExperts=1, lblCoef=0.02,
        rzlCoef=0,
    )  # fmt: skip
    assert type(config).__name__ == "MixtralConfig"
    assert (config.n_routed_experts, config.num_experts_per_tok, config.n_shared_experts) == (4, 1, 1)
    assert (config.lbl_coef, config.rzl_coef) == (0.02, None)
    assert config.layer_norm_epsilon == 1e-6


@pytest.mark.parametrize("family", ["llama", "qwen3", "olmo2", "mixtral"])
def test_the_results_model_config_names_its_family_by_the_fields_of_its_class(
    tiny_job: JobFactory, family: str
) -> None:
    config = built_model(tiny_job, family=family)
    recorded = marin_model_config(config, "bundled")
    assert set(recorded) == {field.name for field in dataclasses.fields(config)}
    assert family_of_model_config(recorded) == family


def test_every_other_levanter_family_reads_as_none_of_ours() -> None:
    for name in ("qwen", "mistral", "gemma", "gemma2", "gemma3", "gpt2"):
        fields = {field.name: None for field in dataclasses.fields(LmConfig.get_choice_class(name))}
        assert family_of_model_config(fields) is None, name


# The model_config keys of Marin's own results files (marin-community/marin, experiments/speedrun/), which
# came from a range of Levanter versions.
def field_names(text: str) -> list[str]:
    return text.split()


MARIN_LLAMA_75M = field_names(  # llama_75m
    "activation_function attn_backend cross_entropy_block_size flash_attention_block_size "
    "gradient_checkpointing hidden_dim hybrid_norm initializer_range input_embedding_norm "
    "intermediate_dim layer_norm_epsilon num_heads num_kv_heads num_layers reference_checkpoint rope "
    "scan_layers seq_len tie_word_embeddings tokenizer upcast_attn use_bias use_flash_attention "
    "use_layer_norm_weight"
)
MARIN_QWEN3_130M = field_names(  # adamh_qwen3_scaling/130m
    "activation_function attn_backend base_dim flash_attention_block_size gradient_checkpointing head_dim "
    "hidden_dim hybrid_norm initializer_range input_embedding_norm intermediate_dim layer_norm_epsilon "
    "max_seq_len num_heads num_kv_heads num_layers reference_checkpoint rope scan_layers sliding_window "
    "tie_word_embeddings tokenizer upcast_attn use_bias use_gated_attention use_layer_norm_weight use_mup "
    "use_qk_norm use_sliding_window"
)
MARIN_OLMO_50M = field_names(  # olmo_50m_h200
    "activation_function attention_bias attention_dropout attn_backend cross_entropy_block_size "
    "flash_attention_block_size gradient_checkpointing hidden_dim initializer_range intermediate_dim "
    "layer_norm_epsilon num_heads num_kv_heads num_layers reference_checkpoint rope scan_layers seq_len "
    "tie_word_embeddings tokenizer upcast_attn use_bias use_flash_attention use_layer_norm_weight"
)
MARIN_MOE_300M = field_names(  # moe_300m
    "activation_function attn_backend cross_entropy_block_size flash_attention_block_size "
    "gradient_checkpointing hidden_dim initializer_range intermediate_dim layer_norm_epsilon lbl_coef "
    "n_routed_experts n_shared_experts num_experts_per_tok num_heads num_kv_heads num_layers "
    "reference_checkpoint rope rope_scaling rzl_coef scan_layers seq_len sliding_window "
    "tie_word_embeddings tokenizer upcast_attn use_bias use_flash_attention use_layer_norm_weight"
)


@pytest.mark.parametrize(
    ("keys", "family"),
    [
        (MARIN_LLAMA_75M, "llama"),
        (MARIN_QWEN3_130M, "qwen3"),
        (MARIN_OLMO_50M, "olmo2"),
        (MARIN_MOE_300M, "mixtral"),
    ],
)
def test_marins_own_results_files_read_as_their_family(keys: list[str], family: str) -> None:
    assert family_of_model_config(dict.fromkeys(keys)) == family
