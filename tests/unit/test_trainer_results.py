"""speedrun_results.json exactly as Marin writes it, plus what makes a run comparable and reproducible."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fixtures.trainer import JobFactory
from speedrun_operator.api import Results
from speedrun_operator.manifests import load_job
from speedrun_operator.runinfo import compute_run_info
from speedrun_operator.runinfo.keys import RUN_INFO_KEYS
from speedrun_trainer.paths import RunPaths
from speedrun_trainer.results import (
    RunOutcome,
    results_document,
    write_submission,
)
from speedrun_trainer.step_log import EvalRecord, RunHistory, StepRecord

pytestmark = pytest.mark.unit

FINISHED = datetime(2026, 11, 25, 21, 19, 3, tzinfo=UTC)


def outcome(eval_dataset: str | None, bpb: float | None = 1.5) -> RunOutcome:
    history = RunHistory(
        steps={step: StepRecord(step, 0.25 if step else 10.0) for step in range(20)},
        evals={} if eval_dataset is None else {19: EvalRecord(19, {f"eval/{eval_dataset}/bpb": bpb or 0.0})},
        attempts=["a", "b"],
    )
    return RunOutcome(
        history=history,
        model_config={"hidden_dim": 32, "activation_function": "silu"},
        num_devices=1,
        eval_dataset=eval_dataset,
        completed_at=FINISHED,
        wandb_run_link=None,
        image="ghcr.io/example/trainer:1.0",
    )


def run_info(document: str) -> dict[str, object]:
    info: dict[str, object] = json.loads(document)["runs"][0]["run_info"]
    return info


def test_the_document_is_marins_shape_sorted_and_indented_by_two(tiny_job: JobFactory) -> None:
    document = results_document(tiny_job(), outcome("bundled/kjv"))
    parsed = json.loads(document)
    assert list(parsed) == ["runs"] and len(parsed["runs"]) == 1 and list(parsed["runs"][0]) == ["run_info"]
    assert document == json.dumps(parsed, indent=2, sort_keys=True) + "\n"


def test_run_info_has_every_marin_key_computed_as_marin_does(tiny_job: JobFactory) -> None:
    job = tiny_job()
    info = run_info(results_document(job, outcome("bundled/kjv")))
    assert set(info) >= RUN_INFO_KEYS
    expected = compute_run_info(job.spec)
    assert info["author"] == {
        "name": "Test Author",
        "affiliation": "Test Lab",
        "url": "https://example.org/test",
    }
    assert info["description"] == "A tiny Llama for the trainer's tests."
    assert info["model_size"] == expected.parameters
    assert info["total_tokens"] == 20 * 4 * 64
    assert info["model_flops"] == expected.model_flops == 3 * expected.flops_per_token * 20 * 4 * 64
    assert info["model_flops_per_token"] == expected.flops_per_token
    assert (info["num_chips"], info["num_devices"], info["device_flops"]) == (1, 1, 1.0e11)
    assert info["training_time"] == pytest.approx(10.0 + 19 * 0.25)
    assert info["training_hardware_flops"] == pytest.approx((10.0 + 19 * 0.25) * 1 * 1.0e11)
    assert info["run_completion_timestamp"] == "2026-11-25 21:19:03 UTC"
    assert info["wandb_run_link"] is None
    assert info["tokenized_dataset"] == "bundled:speedrun-operator-tiny-corpus"
    assert info["resources"] == {"cpu": {"hosts": 1}, "peak_flops_per_chip": 1.0e11}
    train_config = info["train_config"]
    assert isinstance(train_config, dict)
    assert (train_config["train_batch_size"], train_config["num_train_steps"]) == (4, 20)
    assert (train_config["learning_rate"], train_config["train_seq_len"]) == (3.0e-3, 64)


def test_run_info_adds_tokens_eval_set_steps_image_and_config_digest(tiny_job: JobFactory) -> None:
    info = run_info(results_document(tiny_job(), outcome("bundled/kjv")))
    assert (info["vocab_size"], info["eval_dataset"], info["eval_bpb"]) == (1024, "bundled/kjv", 1.5)
    assert (info["steps_completed"], info["attempts"]) == (20, 2)
    assert info["image"] == "ghcr.io/example/trainer:1.0"
    assert str(info["config_digest"]).startswith("sha256:")
    assert (
        info["config_digest"]
        != run_info(results_document(tiny_job(train={"steps": 21}), outcome(None)))["config_digest"]
    )


def test_the_leaderboard_key_holds_c4_en_bpb_only_when_c4_en_was_the_eval_set(tiny_job: JobFactory) -> None:
    assert run_info(results_document(tiny_job(), outcome("bundled/kjv")))["eval/paloma/c4_en/bpb"] is None
    assert (
        run_info(results_document(tiny_job(), outcome("paloma/c4_en", 1.25)))["eval/paloma/c4_en/bpb"] == 1.25
    )
    no_eval = run_info(results_document(tiny_job(), outcome(None)))
    assert (no_eval["eval/paloma/c4_en/bpb"], no_eval["eval_bpb"], no_eval["eval_dataset"]) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("scheme", ["plain", "file", "memory"])
def test_the_submission_folder_holds_the_results_and_the_job_as_yaml(
    tiny_job: JobFactory, tmp_path: Path, scheme: str
) -> None:
    output = {"plain": str(tmp_path), "file": f"file://{tmp_path}", "memory": f"memory://{tmp_path.name}"}[
        scheme
    ]
    job = tiny_job(name="submission")
    paths = RunPaths(output=output, job=job.name, local_dir=tmp_path / "local")
    info = write_submission(job, outcome("bundled/kjv"), paths)
    assert paths.results == f"{output}/submission/speedrun_results.json"
    import fsspec

    with fsspec.open(paths.results, "r") as handle:
        assert run_info(handle.read()) == info
    with fsspec.open(paths.config, "r") as handle:
        config_text = handle.read()
    copy = tmp_path / "copy.yaml"
    copy.write_text(config_text)
    assert load_job(copy).spec == job.spec


def test_a_rewrite_leaves_no_temporary_files_behind(tiny_job: JobFactory, tmp_path: Path) -> None:
    job = tiny_job(name="twice")
    paths = RunPaths(output=str(tmp_path), job=job.name, local_dir=tmp_path / "local")
    write_submission(job, outcome("bundled/kjv"), paths)
    write_submission(job, outcome("bundled/kjv", 1.0), paths)
    assert sorted(p.name for p in (tmp_path / "twice").iterdir()) == [
        "speedrun_job.yaml",
        "speedrun_results.json",
    ]


def test_status_results_summarise_run_info(tiny_job: JobFactory) -> None:
    info = run_info(results_document(tiny_job(), outcome("bundled/kjv")))
    results = Results.from_run_info(info, "gs://bucket/runs/tiny/speedrun_results.json")
    assert (results.eval_bpb, results.eval_set, results.total_tokens) == (1.5, "bundled/kjv", 20 * 4 * 64)
    assert results.mfu == pytest.approx(100 * results.model_flops / results.training_hardware_flops)
    assert results.results_url == "gs://bucket/runs/tiny/speedrun_results.json"
