"""Run info equals Levanter's own arithmetic, for every family: each preset shape and randomly drawn configs.

Levanter's numbers come from the very config the trainer builds for the spec, so a field the trainer drops
(or our count forgets) shows up as a mismatch.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from levanter.models.lm_model import LmConfig
from levanter.utils.flop_utils import lm_flops_per_token

from speedrun_operator.api import PRESETS, ModelShape, ModelSpec
from speedrun_operator.manifests import load_job
from speedrun_operator.runinfo import compute_run_info, flops_per_token, total_trainable_params
from speedrun_trainer.model_families import levanter_model_config

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MARIN_VOCAB = 128_256
FAMILIES = ("llama", "qwen3", "olmo2", "mixtral")
RANDOM_PER_FAMILY = 30


def levanter_config(shape: ModelShape) -> LmConfig:
    return levanter_model_config(shape, shape.seq_len, tokenizer="unused-here")


def random_spec(rng: random.Random, family: str) -> dict[str, Any]:
    kv = rng.choice([1, 2, 4, 8])
    heads = kv * rng.choice([1, 2, 4])
    spec: dict[str, Any] = {
        "family": family,
        "seqLen": rng.choice([128, 512, 1024, 2048, 4096]),
        "hiddenDim": heads * rng.choice([16, 32, 64, 128]),
        "intermediateDim": rng.randrange(64, 16384, 64),
        "numHeads": heads,
        "numKvHeads": kv,
        "numLayers": rng.randrange(1, 48),
    }
    if family != "mixtral":
        spec["tieWordEmbeddings"] = rng.random() < 0.3
    if family in ("llama", "qwen3"):
        if rng.random() < 0.2:
            spec["headDim"] = rng.choice([32, 64, 128])
        spec["hybridNorm"] = rng.random() < 0.5
        spec["inputEmbeddingNorm"] = rng.random() < 0.3
    if family == "llama":
        spec["useQkNorm"] = rng.random() < 0.5
    if family == "mixtral":
        experts = rng.randrange(1, 65)
        spec |= {
            "nRoutedExperts": experts,
            "numExpertsPerTok": rng.randrange(1, experts + 1),
            "nSharedExperts": rng.choice([0, 0, 1, 2]),
        }
    return spec


def random_shapes(family: str, count: int) -> list[ModelShape]:
    rng = random.Random(f"{family}-1234")
    return [ModelSpec.model_validate(random_spec(rng, family)).resolve() for _ in range(count)]


PRESET_SHAPES = [
    ModelSpec.model_validate({"family": family, "preset": name}).resolve()
    for family in FAMILIES
    for name in PRESETS
]
RANDOM_SHAPES = [shape for family in FAMILIES for shape in random_shapes(family, RANDOM_PER_FAMILY)]


def shape_id(shape: ModelShape) -> str:
    return f"{shape.family}-{shape.num_layers}x{shape.hidden_dim}"


@pytest.mark.parametrize("shape", PRESET_SHAPES + RANDOM_SHAPES, ids=shape_id)
@pytest.mark.parametrize("vocab", [MARIN_VOCAB, 32_000, 1024])
def test_parameters_and_flops_per_token_equal_levanters(shape: ModelShape, vocab: int) -> None:
    config = levanter_config(shape)
    assert total_trainable_params(shape, vocab) == config.total_trainable_params(vocab)
    assert flops_per_token(shape, vocab) == pytest.approx(config.flops_per_token(vocab), rel=1e-12)


@pytest.mark.parametrize("shape", PRESET_SHAPES, ids=shape_id)
def test_flops_per_token_is_levanters_lm_flops_per_token_with_the_experts_a_token_meets(
    shape: ModelShape,
) -> None:
    moe = shape.moe
    experts = {} if moe is None else {
        "num_experts": moe.n_routed_experts,
        "num_shared_experts": moe.n_shared_experts,
        "num_experts_per_tok": moe.num_experts_per_tok,
    }  # fmt: skip
    expected = lm_flops_per_token(
        shape.hidden_dim, shape.intermediate_dim, shape.num_layers, shape.num_kv_heads, shape.num_heads,
        shape.seq_len, MARIN_VOCAB, glu=True, **experts,
    )  # fmt: skip
    assert flops_per_token(shape, MARIN_VOCAB) == pytest.approx(expected, rel=1e-12)


def test_the_random_draws_cover_every_option_and_moe_shape() -> None:
    drawn = {family: random_shapes(family, RANDOM_PER_FAMILY) for family in FAMILIES}
    for family in ("llama", "qwen3"):
        assert any(s.hybrid_norm for s in drawn[family])
        assert any(s.input_embedding_norm for s in drawn[family])
        assert any(s.head_dim is not None for s in drawn[family])
    assert any(s.use_qk_norm for s in drawn["llama"])
    moes = [s.moe for s in drawn["mixtral"] if s.moe is not None]
    assert any(m.n_shared_experts > 0 for m in moes) and any(m.n_shared_experts == 0 for m in moes)
    assert any(m.num_experts_per_tok == m.n_routed_experts for m in moes)
    assert any(m.num_experts_per_tok < m.n_routed_experts for m in moes)


def test_olmo2_counts_its_query_and_key_norms_as_marins_olmo_50m_h200_reported() -> None:
    # Marin's olmo_50m_h200 results: 50,875,584 parameters, where the same Llama shape has 50,874,048.
    olmo = ModelSpec.model_validate({"family": "olmo2", "preset": "llama_50m"}).resolve()
    llama = ModelSpec.model_validate({"preset": "llama_50m"}).resolve()
    assert total_trainable_params(olmo, MARIN_VOCAB) == 50_875_584
    assert total_trainable_params(llama, MARIN_VOCAB) == 50_874_048


def test_speedrun_info_on_marins_hello_world_prints_levanters_numbers() -> None:
    path = ROOT / "examples" / "marin-hello-world-a100.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "speedrun_operator.cli", "info", "--json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    printed = json.loads(result.stdout)
    job = load_job(path)
    config = levanter_config(job.spec.model.resolve())
    tokens = job.spec.train.batch_size * config.seq_len * job.spec.train.steps
    assert printed["parameters"] == config.total_trainable_params(MARIN_VOCAB)
    assert printed["totalTokens"] == tokens == 32 * 512 * 100
    assert printed["modelFlops"] == pytest.approx(3 * config.flops_per_token(MARIN_VOCAB) * tokens, rel=1e-12)
    assert printed["peakFlopsPerChip"] == 312e12 and printed["peakFlops"] == 312e12
    assert printed == compute_run_info(job.spec).model_dump(mode="json") | {"name": job.name}
