"""A model from the submitter's own code trains for real with `speedrun run`, from a folder as a GitOps
repository holds it (the SpeedrunJob's YAML, its .py beside it); broken code fails once, in one line.

The model is the custom-code example's (examples/custom-model/parallel_llama.py) at the tiny shape of the
optimizer-and-family matrix (1 layer, 32 wide, 64 tokens, 24 steps), trained with AdamW at that matrix's
rate.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.trainer import TINY_SPEC, SpeedrunProcess, job_document, read_run_info
from speedrun_operator import contract
from speedrun_trainer.step_log import read_history

pytestmark = pytest.mark.e2e

EXAMPLE_CODE = Path(__file__).resolve().parents[2] / "examples" / "custom-model" / "parallel_llama.py"
STEPS = 24
MIN_LOSS_DROP = 0.25
"""Nats between the mean of the first three and of the last four steps' loss, as in the matrix."""
CONFIG = {"seq_len": 64, "hidden_dim": 32, "intermediate_dim": 64, "num_heads": 2, "num_kv_heads": 2}


def custom_folder(folder: Path, name: str, source: str) -> Path:
    """A GitOps folder: the job's YAML and parallel_llama.py beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "parallel_llama.py").write_text(source)
    spec: dict[str, Any] = {
        **TINY_SPEC,
        "model": {
            "family": "custom",
            "code": {
                "configMap": {"name": "parallel-llama-code"},
                "module": "parallel_llama",
                "configClass": "ParallelLlamaConfig",
                "config": {**CONFIG, "num_layers": 1},
            },
        },
        "train": {**TINY_SPEC["train"], "seqLen": 64, "steps": STEPS, "warmup": 0.1, "learningRate": 1e-2},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job_document(name, spec), sort_keys=False))
    return path


def test_a_tiny_custom_model_trains_from_its_folder_and_its_results_record_the_codes_digest(
    tmp_path: Path, speedrun_processes: Callable[..., SpeedrunProcess]
) -> None:
    source = EXAMPLE_CODE.read_text()
    path = custom_folder(tmp_path / "gitops", "tiny-custom", source)
    output = tmp_path / "output"
    process = speedrun_processes(
        ["run", str(path), "--output", str(output)], cwd=tmp_path, log=tmp_path / "run.log"
    )
    assert process.wait(timeout=600) == 0, process.output()[-4000:]
    assert "model code" in process.output() and "parallel_llama.ParallelLlamaConfig" in process.output()

    info = read_run_info(output / "tiny-custom" / "speedrun_results.json")
    digest = contract.code_digest({"parallel_llama.py": source.encode()})
    assert info["model_code"]["digest"] == digest
    assert info["model_code"]["files"] == ["parallel_llama.py"]
    # The example's own formula for its parameters, at this shape: its counts are its code's.
    head, vocab = 16, info["vocab_size"]
    block = 2 * 32 * head * 4 + 2 * 32 * 64 + 32
    assert info["model_size"] == block + 32 + vocab * 32
    assert info["model_config"]["hidden_dim"] == 32
    assert info["model_flops"] == pytest.approx(3 * info["model_flops_per_token"] * info["total_tokens"])

    history = read_history(str(output / "tiny-custom" / "steps"))
    losses = [record.loss for _, record in sorted(history.steps.items()) if record.loss is not None]
    assert len(losses) == STEPS
    first, last = statistics.mean(losses[:3]), statistics.mean(losses[-4:])
    assert last < first - MIN_LOSS_DROP, f"loss {first:.3f} -> {last:.3f}: {losses}"

    check = speedrun_processes(
        ["validate", str(output / "tiny-custom")], cwd=tmp_path, log=tmp_path / "v.log"
    )
    assert check.wait(timeout=120) == 0, check.output()


def test_broken_code_fails_the_run_once_with_its_file_and_line(
    tmp_path: Path, speedrun_processes: Callable[..., SpeedrunProcess]
) -> None:
    source = EXAMPLE_CODE.read_text().replace(
        "from levanter.utils.flop_utils import lm_flops_per_token",
        "from levanter.utils.flop_utils import lm_flops_per_token_that_is_not_there",
    )
    line = next(n for n, text in enumerate(source.splitlines(), start=1) if "_that_is_not_there" in text)
    path = custom_folder(tmp_path / "gitops", "broken-custom", source)
    output = tmp_path / "output"
    expected = (
        f"parallel_llama.py:{line}: ImportError: cannot import name 'lm_flops_per_token_that_is_not_there'"
    )

    run = speedrun_processes(
        ["run", str(path), "--output", str(output)], cwd=tmp_path, log=tmp_path / "run.log"
    )
    assert run.wait(timeout=300) == 1, run.output()[-4000:]
    failed = [text for text in run.output().splitlines() if text.startswith("failed:")]
    assert len(failed) == 1 and failed[0].startswith(f"failed: CodeError: {expected}"), run.output()[-4000:]
    assert "training" not in run.output().split("failed:")[0].split("starting Ray")[-1]

    # What a RayJob's driver does: the attempt ends cleanly (KubeRay retries nothing), the failure recorded
    # where the operator reads it.
    (output / "broken-custom" / contract.FAILURE_FILE).unlink()
    train = speedrun_processes(
        ["train", str(path), "--output", str(output)], cwd=tmp_path, log=tmp_path / "train.log"
    )
    assert train.wait(timeout=300) == 0, train.output()[-4000:]
    record = json.loads((output / "broken-custom" / contract.FAILURE_FILE).read_text())
    assert record["reason"] == "CodeError" and record["message"].startswith(expected)
    assert f"the model's code is broken: {expected}" in train.output()
