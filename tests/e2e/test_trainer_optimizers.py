"""Every optimizer the pinned Levanter can train trains a tiny Llama for real with `speedrun run`, and its
loss falls; the settings it cannot train still fail as recorded, so an upgrade that fixes one shows."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures.trainer import TINY_SPEC, SpeedrunProcess, job_document, read_run_info, write_job
from speedrun_operator.api import SpeedrunJob, parse_job
from speedrun_operator.api.optimizers import OPTIMIZER_MODELS, training_blocker
from speedrun_trainer.step_log import read_history

pytestmark = pytest.mark.e2e

STEPS = 48
SECONDS_PER_RUN = 600
# Peak learning rate (train.learningRate) and optimizer fields per type: each optimizer's own scale, large
# enough for a 1-layer, 32-wide Llama to learn visibly in STEPS steps (tried on 2 CPU cores: ADOPT diverges
# at 3e-3, Kron barely moves at 1e-2). Types not listed use 3e-3.
SETTINGS: dict[str, tuple[float, dict[str, Any]]] = {
    "adopt": (1e-3, {}),
    "lion": (1e-3, {}),
    "kron": (3e-2, {"updateProbFlatStart": 10, "memorySaveMode": "all_diag"}),
    "rmsprop": (1e-3, {}),
    "muon": (2e-2, {"adamLr": 1e-2}),
    "scion": (2e-2, {}),
}


MESH_ERROR = "AbstractMesh does not implement devices"
TRACED_BOOL_ERROR = "Attempted boolean conversion of traced array"
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "sophia-h": ({}, "unexpected keyword argument 'loss'"),
    "soap": ({}, MESH_ERROR),
}
"""Optimizers validation refuses outright, and the error Levanter fails with when one trains anyway."""
UNTRAINABLE: dict[str, tuple[dict[str, Any], str]] = {
    # Validation lets these through (Marin's AdamH and MuonH submissions are examples here), but the pinned
    # Levanter's scale_by_adamh compares a traced norm with max() and fails at the first step.
    "adamH": ({"adamLr": 1e-2}, TRACED_BOOL_ERROR),
    "muonH": ({"adamLr": 1e-2}, TRACED_BOOL_ERROR),
}


@pytest.fixture(scope="module")
def shared_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One output for all the runs: the bundled corpus is tokenized once and its cache reused."""
    return tmp_path_factory.mktemp("optimizers")


def tiny_spec(name: str, learning_rate: float, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        **TINY_SPEC,
        "train": {**TINY_SPEC["train"], "steps": STEPS, "learningRate": learning_rate, "warmup": 0.1,
                  "optimizer": {"type": name, **fields}},
    }  # fmt: skip


TRAINABLE = sorted(name for name in OPTIMIZER_MODELS if name not in REFUSED and name not in UNTRAINABLE)


@pytest.mark.parametrize("name", TRAINABLE)
def test_a_tiny_run_with_each_optimizer_trains_and_its_loss_falls(
    name: str, tmp_path: Path, shared_output: Path, speedrun_processes: Callable[..., SpeedrunProcess]
) -> None:
    learning_rate, fields = SETTINGS.get(name, (3e-3, {}))
    job = parse_job(job_document(f"opt-{name.lower()}", tiny_spec(name, learning_rate, fields)))
    file = write_job(job, tmp_path)
    args = ["run", file.name, "--output", str(shared_output)]
    process = speedrun_processes(args, cwd=tmp_path, log=tmp_path / "speedrun.log")
    assert process.wait(timeout=SECONDS_PER_RUN) == 0, process.output()[-4000:]

    results = shared_output / job.name / "speedrun_results.json"
    info = read_run_info(results)
    assert info["train_config"]["optimizer_config"]["type"] == name
    assert info["train_config"]["optimizer_config"]["learning_rate"] == learning_rate
    records = sorted(read_history(str(results.parent / "steps")).steps.items())
    losses = [record.loss for _, record in records if record.loss is not None]
    assert len(losses) == STEPS
    first, last = statistics.mean(losses[:3]), statistics.mean(losses[-4:])
    assert last < first - 0.25, f"{name}: loss {first:.3f} -> {last:.3f}: {losses}"


FAILING = {
    **{name: (fields, error) for name, (fields, error) in {**REFUSED, **UNTRAINABLE}.items()},
    "kron-triangular": ({"memorySaveMode": "one_diag"}, MESH_ERROR),
}


# The body of `speedrun run` without its validation, in a process of its own (each run starts its own Ray).
UNCHECKED_RUN = """
import json, sys
from speedrun_operator.api import SpeedrunJob
from speedrun_trainer.runner import train_job
job = SpeedrunJob.model_validate(json.loads(sys.argv[1]))
train_job(job, output=sys.argv[2], local_ray=True)
"""


@pytest.mark.parametrize("case", list(FAILING))
def test_what_the_pinned_levanter_cannot_train_still_fails_the_same_way(
    case: str, tmp_path: Path, shared_output: Path
) -> None:
    """When a Levanter upgrade fixes one of these, this fails: lift its refusal (api/optimizers.py) and move
    it to the trainable ones above."""
    name = case.removesuffix("-triangular")
    fields, error = FAILING[case]
    document = job_document(f"failing-{case.lower()}", tiny_spec(name, 3e-3, fields))
    job = SpeedrunJob.model_validate(document)  # the schema only, not the checks that refuse it
    assert job.spec.train.optimizer is not None
    assert (training_blocker(job.spec.train.optimizer) is None) == (name in UNTRAINABLE)
    run = subprocess.run(
        [sys.executable, "-c", UNCHECKED_RUN, json.dumps(document), str(shared_output)],
        cwd=tmp_path, capture_output=True, text=True, timeout=SECONDS_PER_RUN,
    )  # fmt: skip
    assert run.returncode != 0 and error in run.stdout + run.stderr, (run.stdout + run.stderr)[-4000:]
