"""Model families in the API: Llama unless a file says otherwise, Levanter's defaults for each family, and
one clear line for a field a family does not honour or a shape that cannot be built."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from levanter.models.llama import LlamaConfig
from levanter.models.mixtral import MixtralConfig
from levanter.models.olmo import Olmo2Config
from levanter.models.qwen import Qwen3Config
from pydantic import ValidationError

from speedrun_operator.api import ModelSpec
from speedrun_operator.api.families import FAMILIES

pytestmark = pytest.mark.unit

LEVANTER_CLASSES = {
    "llama": LlamaConfig,
    "qwen3": Qwen3Config,
    "olmo2": Olmo2Config,
    "mixtral": MixtralConfig,
}
NANO = {"preset": "llama_nano"}


def model(**fields: Any) -> ModelSpec:
    return ModelSpec.model_validate(NANO | fields)


def error_of(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        model(**fields)
    [error] = caught.value.errors()
    return str(error["msg"]).removeprefix("Value error, ")


def test_a_file_without_a_family_is_the_llama_it_always_was() -> None:
    shape = model().resolve()
    assert shape.family == "llama" and shape.moe is None
    assert shape.layer_norm_epsilon == 1e-5
    assert not (shape.hybrid_norm or shape.use_qk_norm or shape.input_embedding_norm or shape.upcast_attn)
    assert shape.attn_backend is None


def test_every_family_is_registered_in_levanter_under_its_name() -> None:
    from levanter.models.lm_model import LmConfig

    for name, family in FAMILIES.items():
        assert LmConfig.get_choice_class(name) is LEVANTER_CLASSES[name]
        assert LEVANTER_CLASSES[name].__name__ == family.levanter_config


@pytest.mark.parametrize("family", list(LEVANTER_CLASSES))
def test_unset_fields_resolve_to_the_familys_levanter_defaults(family: str) -> None:
    shape = model(family=family).resolve()
    defaults = {f.name: f.default for f in dataclasses.fields(LEVANTER_CLASSES[family])}
    ours = {
        "layer_norm_epsilon": shape.layer_norm_epsilon,
        "initializer_range": shape.initializer_range,
        "activation_function": shape.activation,
        "tie_word_embeddings": shape.tie_word_embeddings,
        "scan_layers": shape.scan_layers,
        "gradient_checkpointing": shape.gradient_checkpointing,
        "use_bias": shape.use_bias,
        "upcast_attn": shape.upcast_attn,
        "attn_backend": shape.attn_backend,
    }
    for name in ("hybrid_norm", "use_qk_norm", "input_embedding_norm"):
        if name in defaults:
            ours[name] = getattr(shape, name)
    if shape.moe is not None:
        ours |= dataclasses.asdict(shape.moe)
    levanter = {name: defaults[name] for name in ours}
    levanter["activation_function"] = levanter["activation_function"].value
    assert ours == levanter
    assert shape.rope_theta == LEVANTER_CLASSES[family]().rope.theta


def test_mixtral_defaults_to_levanters_eight_experts_two_per_token() -> None:
    moe = model(family="mixtral").resolve().moe
    assert moe is not None
    assert (moe.n_routed_experts, moe.num_experts_per_tok, moe.n_shared_experts) == (8, 2, 0)
    assert (moe.lbl_coef, moe.rzl_coef) == (0.01, 0.001)


def test_a_zero_coefficient_turns_that_auxiliary_loss_off_as_levanters_none_does() -> None:
    moe = model(family="mixtral", lblCoef=0, rzlCoef=0.002).resolve().moe
    assert moe is not None and (moe.lbl_coef, moe.rzl_coef) == (None, 0.002)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"family": "qwen3", "useQkNorm": True},
         "useQkNorm true is not an option of family qwen3: qwen3 always normalises queries and keys"),
        ({"family": "olmo2", "headDim": 64},
         "headDim 64 is not an option of family olmo2: Levanter's Olmo2Config has none"),
        ({"family": "olmo2", "inputEmbeddingNorm": True},
         "inputEmbeddingNorm true is not an option of family olmo2"),
        ({"family": "mixtral", "hybridNorm": True},
         "hybridNorm true is not an option of family mixtral: Levanter's Mixtral layers ignore it"),
        ({"family": "mixtral", "tieWordEmbeddings": True},
         "tieWordEmbeddings true is not an option of family mixtral: Levanter's Mixtral parameter count"),
        ({"numExpertsPerTok": 2},
         "numExpertsPerTok 2 is not an option of family llama: only family mixtral has experts; "
         "set family: mixtral or remove it"),
        ({"family": "olmo2", "lblCoef": 0.02}, "lblCoef 0.02 is not an option of family olmo2"),
    ],
)  # fmt: skip
def test_a_field_the_family_does_not_honour_is_named_with_the_reason_and_the_fix(
    fields: dict[str, Any], message: str
) -> None:
    assert message in error_of(**fields)


def test_an_option_left_at_its_default_is_accepted_by_every_family() -> None:
    defaults = {"hybridNorm": False, "useQkNorm": False, "tieWordEmbeddings": False}
    for family in FAMILIES:
        assert model(family=family, **defaults).family == family


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"family": "mixtral", "nRoutedExperts": 4, "numExpertsPerTok": 5},
         "numExpertsPerTok 5 exceeds nRoutedExperts 4; lower numExpertsPerTok or raise nRoutedExperts"),
        ({"family": "mixtral", "numExpertsPerTok": 9},
         "numExpertsPerTok 9 exceeds nRoutedExperts 8 (the default)"),
        ({"family": "olmo2", "numHeads": 3},
         "hiddenDim 32 is not divisible by numHeads 3; change one of them"),
        ({"family": "qwen3", "numHeads": 3},
         "hiddenDim 32 is not divisible by numHeads 3; change one of them or set headDim"),
        ({"family": "mixtral", "numHeads": 4, "numKvHeads": 3}, "numKvHeads 3 must divide numHeads 4"),
    ],
)  # fmt: skip
def test_an_impossible_shape_is_one_line_naming_the_fields_and_the_fix(
    fields: dict[str, Any], message: str
) -> None:
    text = error_of(**fields)
    assert message in text and "\n" not in text


def test_the_moe_counts_refuse_zero_experts_and_negative_loss_weights() -> None:
    for fields in ({"nRoutedExperts": 0}, {"numExpertsPerTok": 0}, {"nSharedExperts": -1}, {"rzlCoef": -0.1}):
        with pytest.raises(ValidationError):
            model(family="mixtral", **fields)


def test_describe_names_the_family_beside_the_preset() -> None:
    assert model().describe() == "llama_nano"
    assert model(family="qwen3").describe() == "qwen3 llama_nano"
    shape = dict(zip(("seqLen", "hiddenDim", "intermediateDim", "numHeads", "numKvHeads", "numLayers"),
                     (64, 32, 64, 2, 2, 1), strict=True))  # fmt: skip
    assert ModelSpec.model_validate({"family": "mixtral", **shape}).describe() == "custom mixtral"
