"""``speedrun import``: every real leaderboard results file kept under tests/data becomes the SpeedrunJob that
reproduces it (its counts recomputed by ``speedrun info`` equal the recorded ones exactly), a run with its own
model code is named in one line, and bad input gets one line naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pytest
import yaml

from fixtures.submissions import MARIN_RESULTS, NOT_REPRODUCIBLE, speedrun
from speedrun_operator.cli import import_cmd
from speedrun_operator.manifests import load_job, load_ladder
from speedrun_operator.submissions.importer import RECORDED_ANNOTATION, SOURCE_ANNOTATION

pytestmark = pytest.mark.unit

MARIN = MARIN_RESULTS
RESULTS = sorted(MARIN.rglob("speedrun_results.json"))


def run_name(results: Path) -> str:
    return str(results.parent.relative_to(MARIN))


def recorded(results: Path) -> dict[str, object]:
    info: dict[str, object] = json.loads(results.read_text())["runs"][0]["run_info"]
    return info


def test_every_kept_leaderboard_run_imports_with_its_recorded_counts_or_says_what_is_missing(
    tmp_path: Path,
) -> None:
    exact, refused = [], []
    for results in RESULTS:
        out = tmp_path / f"{run_name(results).replace('/', '_')}.yaml"
        ran = speedrun("import", str(results), "-o", str(out))
        if run_name(results) in NOT_REPRODUCIBLE:
            assert ran.returncode == 2 and not out.exists(), run_name(results)
            assert NOT_REPRODUCIBLE[run_name(results)] in ran.stderr, ran.stderr
            assert ran.stderr.count("\n") == 1 and "nothing written" in ran.stderr, ran.stderr
            refused.append(run_name(results))
            continue
        assert ran.returncode == 0, ran.stderr
        shown = json.loads(speedrun("info", "--json", str(out)).stdout)
        info = recorded(results)
        found = (shown["parameters"], shown["totalTokens"], shown["modelFlops"])
        assert found == (info["model_size"], info["total_tokens"], info["model_flops"]), run_name(results)
        exact.append(run_name(results))
    print(
        f"\n{len(exact)} of {len(RESULTS)} real leaderboard results files imported exactly "
        f"(speedrun info equals their model_size, total_tokens and model_flops); {len(refused)} name what "
        f"no SpeedrunJob holds: {', '.join(refused)}"
    )
    assert len(exact) + len(refused) == len(RESULTS) and len(exact) >= 25


def test_the_imported_job_says_who_ran_what_on_which_data_and_where_it_came_from(tmp_path: Path) -> None:
    results = MARIN / "muon_llama_scaling/130m/speedrun_results.json"
    out = tmp_path / "muon.yaml"
    assert speedrun("import", str(results), "-o", str(out)).returncode == 0
    job = load_job(out)
    spec = yaml.safe_load(out.read_text())["spec"]
    assert job.name == "muon-llama-scaling-130m"
    assert job.spec.author.url == "https://WilliamHeld.com"
    assert job.spec.description == "130M parameter model trained with the Muon optimizer."
    assert job.spec.dataset.cache_url == "gs://marin-us-central1/tokenized/subcache/fineweb-edu-10B-6fbcbb"
    assert job.spec.resources.describe() == "v5p-32"
    assert spec["train"]["seed"] == 0 and spec["train"]["dataSeed"] == 42
    # Only what differs from Levanter's MuonConfig defaults; lr, momentum and nesterov are the defaults.
    assert spec["train"]["optimizer"] == {
        "type": "muon",
        "adamLr": 0.0032,
        "beta1": 0.8,
        "beta2": 0.98,
        "epsilon": 1e-15,
        "muonEpsilon": 1e-05,
    }
    assert spec["train"]["lrSchedule"] == "linear" and spec["train"]["decay"] == 0.8
    assert job.metadata.annotations[SOURCE_ANNOTATION] == str(results)
    assert json.loads(job.metadata.annotations[RECORDED_ANNOTATION])["hardware"] == "v5p-32"


LADDERS = sorted(
    folder
    for folder in {results.parent.parent for results in RESULTS if results.parent.name[:1].isdigit()}
    if len(list(folder.glob("*/speedrun_results.json"))) >= 3
)
"""Folders holding three runs or more in subfolders (130m/, 300m/, ...): Marin's scaling ladders."""


@pytest.mark.parametrize("folder", LADDERS, ids=lambda folder: folder.name)
def test_a_ladder_folder_imports_as_one_speedrun_ladder_whose_rungs_are_its_runs(
    tmp_path: Path, folder: Path
) -> None:
    out = tmp_path / "ladder.yaml"
    ran = speedrun("import", str(folder), "-o", str(out))
    assert ran.returncode == 0, ran.stderr
    ladder, rungs = load_ladder(out)
    assert ladder.name == folder.name.replace("_", "-")
    runs = sorted(folder.glob("*/speedrun_results.json"), key=lambda path: recorded(path)["model_size"])  # type: ignore[arg-type, return-value]
    assert [rung.name for rung in rungs] == [path.parent.name.replace("_", "-") for path in runs]
    for rung, results in zip(rungs, runs, strict=True):
        single = tmp_path / f"{rung.name}.yaml"
        assert speedrun("import", str(results), "-o", str(single)).returncode == 0
        job = load_job(single)
        assert rung.job.name == job.name
        assert rung.job.spec == job.spec
    # What every rung shares is said once.
    assert ladder.spec.base.resources is not None  # type: ignore[attr-defined]


def test_other_hardware_changes_chips_peak_and_time_but_not_what_the_run_is(tmp_path: Path) -> None:
    results = MARIN / "adamw_llama_scaling/130m/speedrun_results.json"
    original, moved = tmp_path / "original.yaml", tmp_path / "h100.yaml"
    speedrun("import", str(results), "-o", str(original))
    ran = speedrun(
        "import", str(results), "--hardware", "8xH100", "--output", "gs://my-bucket/runs", "-o", str(moved)
    )
    assert ran.returncode == 0, ran.stderr
    before = json.loads(speedrun("info", "--json", str(original)).stdout)
    after = json.loads(speedrun("info", "--json", str(moved)).stdout)
    assert load_job(moved).spec.output == "gs://my-bucket/runs"
    for same in ("parameters", "totalTokens", "modelFlops", "flopsPerToken"):
        assert after[same] == before[same], same
    assert (before["numChips"], after["numChips"]) == (16, 8)
    assert after["peakFlopsPerChip"] != before["peakFlopsPerChip"]
    assert after["estimatedSecondsAt50PctMfu"] != before["estimatedSecondsAt50PctMfu"]
    table = speedrun("info", str(moved), env={"COLUMNS": "200"}).stdout
    assert "same as recorded" in table and "parameters, total tokens, model FLOPs" in table
    assert "v5p-32: 16 chips x 4.5900e+14 FLOP/s" in table
    assert "chips 16 → 8; peak FLOP/s per chip 4.5900e+14 → 9.8950e+14; time at 50% MFU" in table


def test_a_results_url_imports_as_its_file_does(tmp_path: Path) -> None:
    results = MARIN / "muon_llama_scaling/130m/speedrun_results.json"
    memory = fsspec.filesystem("memory")
    memory.pipe("/experiments/speedrun/muon_llama_scaling/130m/speedrun_results.json", results.read_bytes())
    by_file, by_url = tmp_path / "file.yaml", tmp_path / "url.yaml"
    assert speedrun("import", str(results), "-o", str(by_file)).returncode == 0
    ran = speedrun("import", "memory://experiments/speedrun/muon_llama_scaling/130m/", "-o", str(by_url))
    assert ran.returncode == 0, ran.stderr
    assert load_job(by_url).name == load_job(by_file).name == "muon-llama-scaling-130m"
    assert load_job(by_url).spec == load_job(by_file).spec
    assert load_job(by_url).metadata.annotations[SOURCE_ANNOTATION] == (
        "memory://experiments/speedrun/muon_llama_scaling/130m/speedrun_results.json"
    )


def test_a_github_page_of_a_results_file_is_read_as_the_raw_file() -> None:
    page = (
        "https://github.com/marin-community/marin/blob/main/experiments/speedrun/x/130m/speedrun_results.json"
    )
    assert import_cmd.raw_file_url(page) == (
        "https://raw.githubusercontent.com/marin-community/marin/main/experiments/speedrun/x/130m/speedrun_results.json"
    )


def test_a_run_with_its_own_model_code_is_written_only_when_asked(tmp_path: Path) -> None:
    results = MARIN / "parallel_llama/130m/speedrun_results.json"
    out = tmp_path / "partial.yaml"
    ran = speedrun("import", str(results), "--partial", "-o", str(out))
    assert ran.returncode == 0
    assert "use_parallel_blocks" in ran.stderr and "experiments/speedrun/<run>/" in ran.stderr
    assert load_job(out).spec.model.hidden_dim == 512


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def tampered(tmp_path: Path, change: dict[str, object]) -> Path:
    document = json.loads((MARIN / "llama_50m_h200/speedrun_results.json").read_text())
    document["runs"][0]["run_info"].update(change)
    return write(tmp_path / "speedrun_results.json", json.dumps(document))


GEMMA = {"hidden_dim": 64, "num_heads": 2, "num_kv_heads": 2, "num_layers": 2, "query_pre_attn_scalar": 8}


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda tmp: write(tmp / "r.json", "{not json"), "not JSON"),
        (lambda tmp: write(tmp / "r.json", '{"results": []}'), "runs: missing"),
        (lambda tmp: write(tmp / "r.json", '{"runs": [{"info": {}}]}'), "runs[0].run_info: missing"),
        (lambda tmp: tampered(tmp, {"model_config": GEMMA}), "model_config: found"),
        (
            lambda tmp: tampered(tmp, {"train_config": {"train_batch_size": 8}}),
            "train_config.num_train_steps",
        ),
        (
            lambda tmp: tampered(tmp, {"resources": {"tpu_type": "v9-8"}}),
            "resources (the SpeedrunJob's spec.resources.tpu.type)",
        ),
        (lambda tmp: tampered(tmp, {"model_config": None}), "model_config: missing"),
    ],
    ids=[
        "not-json",
        "no-runs",
        "no-run-info",
        "unknown-family",
        "no-steps",
        "unknown-tpu",
        "no-model-config",
    ],
)
def test_bad_input_gets_one_line_naming_the_key(tmp_path: Path, make: object, key: str) -> None:
    source = make(tmp_path)  # type: ignore[operator]
    out = tmp_path / "job.yaml"
    ran = speedrun("import", str(source), "-o", str(out))
    assert ran.returncode == 2 and not out.exists()
    assert ran.stderr.count("\n") == 1 and key in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr


def test_an_unknown_hardware_name_is_one_line(tmp_path: Path) -> None:
    ran = speedrun("import", str(MARIN / "llama_50m_h200"), "--hardware", "8xB9000")
    assert ran.returncode == 2 and ran.stderr.count("\n") == 1 and "--hardware" in ran.stderr


def test_what_a_speedrunjob_cannot_start_from_is_named_and_not_written(tmp_path: Path) -> None:
    document = json.loads((MARIN / "llama_50m_h200/speedrun_results.json").read_text())
    document["runs"][0]["run_info"]["train_config"]["initialize_from_hf"] = "meta-llama/Llama-3.2-1B"
    source = write(tmp_path / "speedrun_results.json", json.dumps(document))
    ran = speedrun("import", str(source), "-o", str(tmp_path / "job.yaml"))
    assert ran.returncode == 2 and not (tmp_path / "job.yaml").exists()
    assert 'train_config.initialize_from_hf: "meta-llama/Llama-3.2-1B"' in ran.stderr


def test_simple_train_configs_skip_bad_steps_becomes_adamws_own_setting(tmp_path: Path) -> None:
    """SimpleTrainConfig's skip_bad_steps is AdamW's (Levanter's AdamConfig), which the API holds only inside
    an explicit optimizer, so the scalars move in with it."""
    source = tampered(tmp_path, {})
    document = json.loads(source.read_text())
    train = document["runs"][0]["run_info"]["train_config"]
    train.update({"skip_bad_steps": True, "beta2": 0.98})
    source.write_text(json.dumps(document))
    out = tmp_path / "job.yaml"
    assert speedrun("import", str(source), "-o", str(out)).returncode == 0
    optimizer = load_job(out).spec.train.optimizer
    assert optimizer is not None and optimizer.type == "adam"
    assert optimizer.skip_bad_steps is not None and optimizer.beta2 == 0.98
