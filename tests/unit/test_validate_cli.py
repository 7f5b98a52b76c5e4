"""`speedrun validate` names the file, the field, the bad value and the fix — and never shows a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from speedrun_operator.cli import main

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
BAD = Path(__file__).parent / "bad_specs"
BAD_FILES = sorted(BAD.glob("*.yaml"))


def speedrun(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "speedrun_operator.cli", *args], capture_output=True, text=True, cwd=ROOT
    )


def expected_line(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path} must start with '# expect: <error text>'"
    return first.removeprefix("# expect: ")


def test_the_bad_spec_collection_is_large_enough() -> None:
    assert len(BAD_FILES) >= 25


def test_a_folder_of_bad_files_exits_nonzero_with_one_clear_line_per_error() -> None:
    result = speedrun("validate", str(BAD))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"{len(BAD_FILES)} of {len(BAD_FILES)} files invalid"
    for path in BAD_FILES:
        mine = [line for line in lines if line.startswith(f"{path}:")]
        assert len(mine) == 1, f"expected exactly one error line for {path.name}, got {mine}"


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_each_bad_file_gets_the_error_that_names_its_field_and_fix(path: Path) -> None:
    # In-process for speed; the folder test above runs the real command and checks for tracebacks.
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert expected_line(path) in result.stderr
    assert result.stderr.startswith(str(path))


def test_every_example_is_valid() -> None:
    result = speedrun("validate", "examples")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("files valid")


def test_a_missing_file_is_reported_without_a_traceback() -> None:
    result = speedrun("validate", "does-not-exist.yaml")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_other_kinds_found_in_a_folder_are_left_alone_but_a_named_one_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
    )
    (tmp_path / "job.yaml").write_text((ROOT / "examples" / "tpu-v4-8.yaml").read_text())
    folder = speedrun("validate", str(tmp_path))
    assert folder.returncode == 0 and folder.stdout.strip() == "1 file valid"
    named = speedrun("validate", str(tmp_path / "kustomization.yaml"))
    assert named.returncode == 2 and "no SpeedrunJob in this file" in named.stderr


MARIN = Path(__file__).parents[1] / "data" / "leaderboard" / "marin"
LLAMA_50M_H200 = MARIN / "llama_50m_h200" / "speedrun_results.json"

# The SpeedrunJob of Marin's llama_50m_h200 submission: its author (a bare-domain URL, as recorded), the
# llama_50m preset on one H200, batch 128 for 7,600 steps.
LLAMA_50M_H200_JOB = """\
apiVersion: speedrun.marin.community/v1alpha1
kind: SpeedrunJob
metadata:
  name: llama-50m-gpu-h200-run
spec:
  author: {name: Will Held, affiliation: Georgia Institute of Technology, url: WilliamHeld.com}
  description: 50M param model based on Llama architecture on H200.
  model: {preset: llama_50m}
  train: {batchSize: 128, steps: 7600, learningRate: 3.0e-3, weightDecay: 0.1, stepsPerEval: 500}
  resources:
    gpu: {type: H200, count: 1}
"""


def marin_folder(tmp_path: Path, results: Path = LLAMA_50M_H200) -> Path:
    """A folder as in Marin's experiments/speedrun/: the results file beside the run's training script."""
    folder = tmp_path / "experiments" / "speedrun" / results.parent.name
    folder.mkdir(parents=True)
    (folder / f"{results.parent.name}.py").write_text(
        "# the submission's training script (not read by validate)\n"
    )
    (folder / "speedrun_results.json").write_text(results.read_text())
    return folder


def test_every_real_marin_results_file_kept_here_validates_on_its_own() -> None:
    result = speedrun("validate", str(MARIN))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{len(list(MARIN.rglob('speedrun_results.json')))} files valid"


def test_a_marin_style_folder_with_honest_results_is_valid(tmp_path: Path) -> None:
    folder = marin_folder(tmp_path)
    result = speedrun("validate", str(folder.parent))
    assert (result.returncode, result.stdout.strip()) == (0, "1 file valid"), result.stderr


def test_the_same_folder_with_forged_model_flops_is_refused_naming_the_key(tmp_path: Path) -> None:
    folder = marin_folder(tmp_path)
    results = folder / "speedrun_results.json"
    document = json.loads(results.read_text())
    document["runs"][0]["run_info"]["model_flops"] = 1.0e17
    results.write_text(json.dumps(document, indent=2, sort_keys=True))

    result = speedrun("validate", str(folder))

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"{results}: runs[0].run_info.model_flops: found 1e+17, expected 1.66350525825024e+17 "
        "= 3 x FLOPs per token x total tokens (recomputed from the recorded model_config and train_config)",
        "1 of 1 files invalid",
    ]


def test_a_speedrunjob_with_a_bare_domain_author_url_validates_the_real_results_beside_it(
    tmp_path: Path,
) -> None:
    folder = marin_folder(tmp_path)
    (folder / "speedrun_job.yaml").write_text(LLAMA_50M_H200_JOB)

    result = speedrun("validate", str(folder))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2 files valid"


def test_the_author_url_is_compared_as_written(tmp_path: Path) -> None:
    folder = marin_folder(tmp_path)
    (folder / "speedrun_job.yaml").write_text(
        LLAMA_50M_H200_JOB.replace("url: WilliamHeld.com", "url: https://WilliamHeld.com")
    )

    result = speedrun("validate", str(folder / "speedrun_results.json"))

    assert result.returncode == 2
    assert (
        f'{folder}/speedrun_results.json: runs[0].run_info.author.url: found "WilliamHeld.com", '
        'expected "https://WilliamHeld.com" (from the config)'
    ) in result.stderr


def test_each_family_is_recomputed_as_its_own_levanter_config_counts_it(tmp_path: Path) -> None:
    """Marin's olmo_50m_h200 has 50,875,584 parameters, its Llama twin (llama_50m_h200) 50,874,048: the file
    is checked as OLMo 2, so the Llama count is refused."""
    folder = marin_folder(tmp_path, MARIN / "olmo_50m_h200" / "speedrun_results.json")
    results = folder / "speedrun_results.json"
    assert speedrun("validate", str(folder)).returncode == 0
    document = json.loads(results.read_text())
    document["runs"][0]["run_info"]["model_size"] = 50874048
    results.write_text(json.dumps(document))

    result = speedrun("validate", str(results))

    assert result.returncode == 2
    assert result.stderr.startswith(
        f"{results}: runs[0].run_info.model_size: found 50874048, expected 50875584 (recomputed from the "
        "recorded"
    )


def test_a_recorded_config_of_a_family_not_known_here_is_named(tmp_path: Path) -> None:
    folder = marin_folder(tmp_path)
    results = folder / "speedrun_results.json"
    document = json.loads(results.read_text())
    document["runs"][0]["run_info"]["model_config"]["sliding_window"] = 4096  # Mistral's field
    results.write_text(json.dumps(document))

    result = speedrun("validate", str(results))

    assert result.returncode == 2
    assert result.stderr.startswith(
        f"{results}: runs[0].run_info.model_config: found a config of no family known here, "
        "expected a config of one of llama, qwen3, olmo2, mixtral"
    )


def test_resources_recorded_as_this_projects_trainer_records_them_are_read_too(tmp_path: Path) -> None:
    """Our trainer records the SpeedrunJob's resources section ({gpu: {type, count}}), not Marin's keys."""
    folder = marin_folder(tmp_path)
    results = folder / "speedrun_results.json"
    document = json.loads(results.read_text())
    document["runs"][0]["run_info"]["resources"] = {"gpu": {"type": "H200", "count": 1}}
    results.write_text(json.dumps(document))
    assert speedrun("validate", str(results)).returncode == 0

    document["runs"][0]["run_info"]["resources"] = {"gpu": {"type": "H200", "count": 2}}
    results.write_text(json.dumps(document))
    result = speedrun("validate", str(results))
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"{results}: runs[0].run_info.training_hardware_flops: found 1.540218909919616e+18"
    )
    assert "x 2 chips x 9.895e+14 FLOP/s (from the recorded resources)" in result.stderr
