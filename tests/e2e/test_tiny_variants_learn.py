"""Every optimizer the pinned Levanter can train, and every model family, trains a tiny model for real on
this machine's CPU through `speedrun run`, and its loss falls.

One run per optimizer, two of the families riding along on two of them, and two more runs with Marin's
default AdamW (train's scalars, no optimizer block) for the other family and Llama's normalisation options:
twelve short runs (1 layer, 32 wide, 64 tokens, 24 steps). The runs share one output folder, so the bundled
corpus is tokenized once. What the pinned Levanter cannot train is refused by validation
(api/optimizers.py) and tested there.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures.trainer import JobFactory, SpeedrunProcess, read_run_info, write_job
from speedrun_operator.api.families import family_of_model_config
from speedrun_operator.api.optimizers import OPTIMIZER_MODELS, training_blocker
from speedrun_trainer.step_log import read_history

pytestmark = pytest.mark.e2e

STEPS = 24
RUN_TIMEOUT_SECONDS = 600
MIN_LOSS_DROP = 0.25
"""Nats, between the mean of the first three and of the last four steps' training loss."""
SLOW_STARTERS = {"adopt": 0.05}
"""ADOPT normalises by the previous step's second moment, so its first steps move little: in 24 steps at
1e-3 its loss falls by 0.1 to 0.3 here, and at 3e-3 it diverges."""

OPTIMIZERS: dict[str, tuple[float, dict[str, Any]]] = {
    "adam": (1e-2, {}),
    "adamH": (5e-2, {"adamLr": 1e-2}),
    "adopt": (1e-3, {}),
    "cautious": (3e-3, {}),
    "lion": (1e-3, {}),
    # Kron's preconditioned steps are small: at 3e-3 its loss falls 0.03 in 24 steps here, at 6e-2 enough.
    "kron": (6e-2, {"updateProbFlatStart": 10, "memorySaveMode": "all_diag"}),
    "mars": (3e-3, {}),
    "mini": (3e-3, {}),
    "muon": (2e-2, {"adamLr": 1e-2}),
    "muonH": (5e-2, {"adamLr": 1e-2}),
    "rmsprop": (1e-3, {}),
    "scion": (2e-2, {}),
}
"""Peak learning rate and fields per optimizer: each one's own scale, enough for the tiny model to learn
visibly in STEPS steps."""

FAMILIES: dict[str, dict[str, Any]] = {
    "adam": {"family": "mixtral", "nRoutedExperts": 4, "numExpertsPerTok": 2, "nSharedExperts": 1},
    "cautious": {"family": "qwen3"},
}
"""The model an optimizer trains, where it is not the plain tiny Llama."""

ADAMW_MODELS: dict[str, dict[str, Any]] = {
    "olmo2": {"family": "olmo2"},
    "llama-all-norm": {"hybridNorm": True, "useQkNorm": True, "inputEmbeddingNorm": True, "upcastAttn": True},
}
"""Models trained with the default AdamW at 3e-3 (OLMo 2's norms learn too slowly under ADOPT at its scale
in 24 steps, and diverge at ten times it)."""


def cases() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Run name -> (model fields, train fields)."""
    runs = {
        optimizer: (
            FAMILIES.get(optimizer, {}),
            {"learningRate": lr, "optimizer": {"type": optimizer, **fields}},
        )
        for optimizer, (lr, fields) in OPTIMIZERS.items()
    }
    runs.update({f"adamw-{name}": (model, {"learningRate": 3e-3}) for name, model in ADAMW_MODELS.items()})
    return runs


UNTRAINABLE_HERE = {"soap", "sophia-h"}
"""What the pinned Levanter fails on at the first step; validation refuses them."""


def test_the_matrix_covers_every_optimizer_the_pinned_levanter_trains_and_every_family() -> None:
    assert set(OPTIMIZERS) | UNTRAINABLE_HERE == set(OPTIMIZER_MODELS)
    assert all(
        training_blocker(OPTIMIZER_MODELS[n].model_validate({"type": n})) for n in ("soap", "sophia-h")
    )
    families = {model.get("family", "llama") for model, _ in cases().values()}
    assert families == {"llama", "qwen3", "olmo2", "mixtral"}


@pytest.fixture(scope="module")
def shared_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("variants-output")


@pytest.mark.parametrize("case", list(cases()))
def test_a_tiny_run_of_each_optimizer_and_family_trains_with_speedrun_run_and_its_loss_falls(
    case: str,
    tmp_path: Path,
    shared_output: Path,
    tiny_job: JobFactory,
    speedrun_processes: Callable[..., SpeedrunProcess],
) -> None:
    model, train = cases()[case]
    job = tiny_job(name=f"tiny-{case.lower()}", model=model, train={"steps": STEPS, "warmup": 0.1, **train})
    path = write_job(job, tmp_path)
    process = speedrun_processes(
        ["run", str(path), "--output", str(shared_output)], cwd=tmp_path, log=tmp_path / "speedrun.log"
    )
    assert process.wait(timeout=RUN_TIMEOUT_SECONDS) == 0, process.output()[-4000:]

    info = read_run_info(shared_output / job.name / "speedrun_results.json")
    assert family_of_model_config(info["model_config"]) == job.spec.model.family
    optimizer = info["train_config"]["optimizer_config"]
    assert optimizer["type"] == (job.spec.train.optimizer.type if job.spec.train.optimizer else "adam")
    assert optimizer["learning_rate"] == train["learningRate"]
    history = read_history(str(shared_output / job.name / "steps"))
    losses = [record.loss for _, record in sorted(history.steps.items()) if record.loss is not None]
    assert len(losses) == STEPS
    first, last = statistics.mean(losses[:3]), statistics.mean(losses[-4:])
    drop = SLOW_STARTERS.get(case, MIN_LOSS_DROP)
    assert last < first - drop, f"{case}: loss {first:.3f} -> {last:.3f}: {losses}"
