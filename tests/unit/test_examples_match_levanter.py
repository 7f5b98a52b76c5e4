"""`speedrun info` on every example prints Levanter's own numbers for the config the trainer would build,
and the model-family examples reproduce the numbers of the Marin submissions they follow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from levanter.schedule import BatchSchedule

from speedrun_operator.cli import main
from speedrun_operator.manifests import load_job
from speedrun_trainer.levanter_config import batch_size, model_config

pytestmark = pytest.mark.unit

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))


def info_json(path: Path) -> dict[str, float]:
    result = CliRunner().invoke(main, ["info", "--json", str(path)])
    assert result.exit_code == 0, result.output
    printed: dict[str, float] = json.loads(result.stdout)
    return printed


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_speedrun_info_equals_levanters_numbers_for_the_config_it_trains(path: Path) -> None:
    job = load_job(path)
    printed = info_json(path)
    config = model_config(job.spec)
    vocab = int(printed["vocabSize"])
    train = job.spec.train
    tokens = BatchSchedule(batch_size(train)).global_data_offset_by_step(train.steps) * config.seq_len
    assert printed["parameters"] == config.total_trainable_params(vocab)
    assert printed["flopsPerToken"] == pytest.approx(config.flops_per_token(vocab), rel=1e-12)
    assert printed["totalTokens"] == tokens
    assert printed["modelFlops"] == pytest.approx(3 * config.flops_per_token(vocab) * tokens, rel=1e-12)


@pytest.mark.parametrize(
    ("example", "levanter_class"),
    [
        ("qwen3-130m-muonh", "Qwen3Config"),
        ("llama-130m-all-norm-adamh", "LlamaConfig"),
        ("olmo2-50m-h200", "Olmo2Config"),
        ("mixtral-moe-300m", "MixtralConfig"),
    ],
)
def test_each_family_example_trains_that_familys_levanter_config(example: str, levanter_class: str) -> None:
    assert type(model_config(load_job(EXAMPLES_DIR / f"{example}.yaml").spec)).__name__ == levanter_class


@pytest.mark.parametrize(
    ("example", "parameters", "model_flops"),
    [
        # From Marin's muonh_qwen3_scaling/130m, adamh_llama_scaling/130m, olmo_50m_h200 and
        # moe_300m_activated results files.
        ("qwen3-130m-muonh", 154_147_328, 1.777337490915459e18),
        ("llama-130m-all-norm-adamh", 154_153_472, 1.777337490915459e18),
        ("olmo2-50m-h200", 50_875_584, 1.66350525825024e17),
        ("mixtral-moe-300m", 905_104_128, 4.36257008123904e18),
    ],
)
def test_the_family_examples_have_the_numbers_of_the_marin_submissions_they_follow(
    example: str, parameters: int, model_flops: float
) -> None:
    printed = info_json(EXAMPLES_DIR / f"{example}.yaml")
    assert printed["parameters"] == parameters
    assert printed["modelFlops"] == pytest.approx(model_flops, rel=1e-12)


def test_the_examples_use_the_optimizers_their_submissions_did() -> None:
    for example, optimizer in (("qwen3-130m-muonh", "muonH"), ("llama-130m-all-norm-adamh", "adamH")):
        assert load_job(EXAMPLES_DIR / f"{example}.yaml").spec.train.optimizer_type == optimizer
