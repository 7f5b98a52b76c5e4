"""Run info equals Levanter's own arithmetic, for every preset and for randomly drawn configs."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from levanter.models.llama import LlamaConfig
from levanter.utils.flop_utils import lm_flops_per_token

from speedrun_operator.api import PRESETS, ModelSpec
from speedrun_operator.api.model import LlamaShape
from speedrun_operator.manifests import load_job
from speedrun_operator.runinfo import compute_run_info, flops_per_token, total_trainable_params

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MARIN_VOCAB = 128_256


def levanter_config(shape: LlamaShape) -> LlamaConfig:
    return LlamaConfig(
        seq_len=shape.seq_len,
        hidden_dim=shape.hidden_dim,
        intermediate_dim=shape.intermediate_dim,
        num_heads=shape.num_heads,
        num_kv_heads=shape.num_kv_heads,
        num_layers=shape.num_layers,
        head_dim=shape.head_dim,
        tie_word_embeddings=shape.tie_word_embeddings,
    )


def random_shapes(count: int) -> list[LlamaShape]:
    rng = random.Random(1234)
    shapes = []
    for _ in range(count):
        kv = rng.choice([1, 2, 4, 8])
        heads = kv * rng.choice([1, 2, 4])
        spec = {
            "seqLen": rng.choice([128, 512, 1024, 2048, 4096]),
            "hiddenDim": heads * rng.choice([16, 32, 64, 128]),
            "intermediateDim": rng.randrange(64, 16384, 64),
            "numHeads": heads,
            "numKvHeads": kv,
            "numLayers": rng.randrange(1, 48),
            "tieWordEmbeddings": rng.random() < 0.3,
        }
        if rng.random() < 0.2:
            spec["headDim"] = rng.choice([32, 64, 128])
        shapes.append(ModelSpec.model_validate(spec).resolve())
    return shapes


PRESET_SHAPES = [ModelSpec.model_validate({"preset": name}).resolve() for name in PRESETS]


@pytest.mark.parametrize("shape", PRESET_SHAPES + random_shapes(40))
@pytest.mark.parametrize("vocab", [MARIN_VOCAB, 32_000, 1024])
def test_parameters_and_flops_per_token_equal_levanters(shape: LlamaShape, vocab: int) -> None:
    config = levanter_config(shape)
    assert total_trainable_params(shape, vocab) == config.total_trainable_params(vocab)
    assert flops_per_token(shape, vocab) == pytest.approx(config.flops_per_token(vocab), rel=1e-12)
    assert flops_per_token(shape, vocab) == pytest.approx(
        lm_flops_per_token(
            shape.hidden_dim, shape.intermediate_dim, shape.num_layers, shape.num_kv_heads,
            shape.num_heads, shape.seq_len, vocab, glu=True,
        ),
        rel=1e-12,
    )  # fmt: skip


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
