"""`speedrun export` turns a finished run into a leaderboard folder; `speedrun validate` checks such folders
in CI: every speedrun_results.json must agree with the SpeedrunJob beside it, or gets one line per problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fixtures.submissions import edit_run_info, finished_run, speedrun, speedrun_process
from fixtures.trainer import JobFactory
from speedrun_operator.manifests import load_job
from speedrun_operator.runinfo import compute_run_info

pytestmark = pytest.mark.unit


def exported(tiny_job: JobFactory, tmp_path: Path) -> Path:
    """A finished run exported to ``<tmp>/submission/tiny``; returns the folder."""
    job = tiny_job(name="tiny")
    output = finished_run(tmp_path / "output", job)
    destination = tmp_path / "submission" / "tiny"
    result = speedrun("export", str(output / "speedrun_results.json"), str(destination))
    assert result.returncode == 0, result.stderr
    return destination


def test_export_writes_the_job_and_its_results_and_validate_accepts_the_folder(
    tiny_job: JobFactory, tmp_path: Path
) -> None:
    job = tiny_job(name="tiny")
    output = finished_run(tmp_path / "output", job)
    destination = tmp_path / "submission" / "tiny"

    result = speedrun_process("export", str(output / "speedrun_results.json"), str(destination))

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in destination.iterdir()) == ["speedrun_job.yaml", "speedrun_results.json"]
    results = "speedrun_results.json"
    assert (destination / results).read_bytes() == (output / results).read_bytes()
    assert load_job(destination / "speedrun_job.yaml").spec == job.spec
    validated = speedrun_process("validate", str(tmp_path / "submission"))
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.strip() == "2 files valid"


@pytest.mark.parametrize("source", ["folder", "file-url"])
def test_export_takes_the_run_folder_or_a_file_url(tiny_job: JobFactory, tmp_path: Path, source: str) -> None:
    output = finished_run(tmp_path / "output", tiny_job(name="tiny"))
    argument = str(output) if source == "folder" else f"file://{output}/speedrun_results.json"
    result = speedrun("export", argument, str(tmp_path / "submission"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "submission" / "speedrun_results.json").is_file()


def test_export_refuses_results_that_disagree_with_their_config(tiny_job: JobFactory, tmp_path: Path) -> None:
    output = finished_run(tmp_path / "output", tiny_job(name="tiny"))
    edit_run_info(output / "speedrun_results.json", {"total_tokens": 1})

    result = speedrun("export", str(output), str(tmp_path / "submission"))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "runs[0].run_info.total_tokens: found 1, expected 5120" in result.stderr
    assert not (tmp_path / "submission").exists()


def test_export_of_a_missing_run_names_what_is_missing(tmp_path: Path) -> None:
    result = speedrun("export", str(tmp_path / "nowhere"), str(tmp_path / "submission"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"{tmp_path}/nowhere/speedrun_job.yaml: not found"


def test_export_of_a_job_without_a_cluster_says_so_without_a_traceback(tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
        "HOME": str(tmp_path),
        "KUBERNETES_SERVICE_HOST": None,
    }
    result = speedrun("export", "team-a/hello", str(tmp_path / "submission"), env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("team-a/hello: no Kubernetes configuration")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("total_tokens", 5121, "expected 5120 (recomputed from the config)"),
        ("model_size", 75000, "expected 75872 (recomputed from the config)"),
        ("model_size", 75872.0, "expected 75872 (recomputed from the config)"),
        ("model_flops", 1.5e9, "= 3 x FLOPs per token x total tokens (recomputed from the config)"),
        ("num_chips", 8, "expected 1 (recomputed from the config)"),
        ("training_hardware_flops", 1.0e13, "= training_time 10.0 x 1 chips x 1e+11 FLOP/s"),
        ("eval/paloma/c4_en/bpb", -1.0, "expected a finite number > 0 or null"),
        ("training_time", "fast", "expected a finite number >= 0"),
        ("description", "Something else.", '"A tiny Llama for the trainer\'s tests." (from the config)'),
    ],
)
def test_validate_names_the_file_the_key_what_it_found_and_what_it_expected(
    tiny_job: JobFactory, tmp_path: Path, key: str, value: object, expected: str
) -> None:
    results = exported(tiny_job, tmp_path) / "speedrun_results.json"
    edit_run_info(results, {key: value})

    result = speedrun("validate", str(tmp_path / "submission"))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "1 of 2 files invalid"
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{results}: runs[0].run_info.{key}: found {json.dumps(value)}, ")
    assert expected in lines[0]


def test_the_expected_numbers_are_the_configs_own(tiny_job: JobFactory, tmp_path: Path) -> None:
    """The figures the messages above expect: 20 steps x batch 4 x seq 64, and the tiny model's parameters."""
    info = compute_run_info(tiny_job(name="tiny").spec)
    assert (info.total_tokens, info.parameters, info.num_chips) == (5120, 75872, 1)


def test_validate_reports_each_tampered_key_on_its_own_line(tiny_job: JobFactory, tmp_path: Path) -> None:
    results = exported(tiny_job, tmp_path) / "speedrun_results.json"
    edit_run_info(results, {"total_tokens": 1, "model_size": 2, "model_flops": 3.0})

    result = speedrun("validate", str(results))

    assert result.returncode == 2
    keys = [line.split(": ")[1] for line in result.stderr.strip().splitlines()[:-1]]
    assert keys == [
        "runs[0].run_info.model_size",
        "runs[0].run_info.total_tokens",
        "runs[0].run_info.model_flops",
    ]


def test_validate_requires_the_keys_marin_results_files_have(tiny_job: JobFactory, tmp_path: Path) -> None:
    results = exported(tiny_job, tmp_path) / "speedrun_results.json"
    edit_run_info(results, {}, remove=("model_flops", "run_completion_timestamp"))

    result = speedrun("validate", str(results))

    assert result.returncode == 2
    missing = "found no such key, expected a key Marin results files have"
    assert result.stderr.strip().splitlines()[:-1] == [
        f"{results}: runs[0].run_info.model_flops: {missing}",
        f"{results}: runs[0].run_info.run_completion_timestamp: {missing}",
    ]


def test_validate_checks_results_against_a_config_that_changed_after_the_run(
    tiny_job: JobFactory, tmp_path: Path
) -> None:
    folder = exported(tiny_job, tmp_path)
    config = folder / "speedrun_job.yaml"
    manifest = yaml.safe_load(config.read_text())
    manifest["spec"]["train"]["steps"] = 40
    config.write_text(yaml.safe_dump(manifest))

    result = speedrun("validate", str(folder))

    assert result.returncode == 2
    problems = result.stderr.strip().splitlines()[:-1]
    assert [line.split(": ")[1] for line in problems] == [
        "runs[0].run_info.total_tokens",
        "runs[0].run_info.model_flops",
    ]


def test_results_without_a_config_beside_them_are_checked_against_the_configs_they_record(
    tiny_job: JobFactory, tmp_path: Path
) -> None:
    """This fixture records only two model fields, too few to recompute from: validate says so, naming it.
    (Real Marin files, which record the whole config, pass: tests/unit/test_validate_cli.py.)"""
    folder = exported(tiny_job, tmp_path)
    (folder / "speedrun_job.yaml").unlink()
    result = speedrun("validate", str(folder))
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"{folder}/speedrun_results.json: runs[0].run_info.model_config: "
        "found a config of no family known here"
    )


def test_a_results_file_that_is_not_marins_format_gets_one_line(tmp_path: Path) -> None:
    results = tmp_path / "speedrun_results.json"
    results.write_text('{"run_info": {}}')
    (tmp_path / "speedrun_job.yaml").write_text(
        (Path(__file__).parents[2] / "examples" / "hello-world-cpu.yaml").read_text()
    )
    result = speedrun("validate", str(results))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f'{results}: runs: found null, expected a non-empty list: {{"runs": [{{"run_info": {{...}}}}]}}',
        "1 of 1 files invalid",
    ]
