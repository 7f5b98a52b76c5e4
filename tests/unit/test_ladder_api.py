"""A SpeedrunLadder as a user writes it: rungs merged over the base, named, validated, costed, and its CRD."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from speedrun_operator import crd
from speedrun_operator.builders.names import RUNG_JOB_NAME_LIMIT, rung_job_name
from speedrun_operator.cli import main
from speedrun_operator.ladder.rungs import merge, parse_ladder
from speedrun_operator.manifests import load_ladder

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ladders" / "adamw-llama-scaling-v5p-32.yaml"
MARIN = ROOT / "tests" / "data" / "leaderboard" / "marin" / "adamw_llama_scaling"
MARIN_FOLDERS = {"130m": "130m", "300m": "300m", "520m": "520m", "1-2b": "1_2b"}


def example() -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return manifest


def errors_of(manifest: dict[str, Any], tmp_path: Path) -> str:
    path = tmp_path / "ladder.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    return result.stderr


def test_model_train_and_resources_merge_key_by_key_and_every_other_field_is_replaced_whole() -> None:
    base = {
        "model": {"seqLen": 4096, "hiddenDim": 512},
        "train": {"beta2": 0.98, "optimizer": {"type": "adamw", "beta1": 0.9}, "weightDecayModules": ["a"]},
        "resources": {"tpu": {"type": "v5p-32"}},
        "env": [{"name": "A", "value": "1"}],
        "dataset": {"tokenizer": "x", "validation": {"a": "b"}},
    }
    rung = {
        "model": {"hiddenDim": 768},
        "train": {"optimizer": {"type": "muon", "adamLr": 0.1}, "weightDecayModules": ["b"]},
        "resources": {"tpu": {"slices": 2}},
        "env": [{"name": "B", "value": "2"}],
        "dataset": {"tokenizer": "y"},
    }
    assert merge(base, rung) == {
        "model": {"seqLen": 4096, "hiddenDim": 768},
        "train": {"beta2": 0.98, "optimizer": {"type": "muon", "adamLr": 0.1}, "weightDecayModules": ["b"]},
        "resources": {"tpu": {"type": "v5p-32", "slices": 2}},
        "env": [{"name": "B", "value": "2"}],
        "dataset": {"tokenizer": "y"},
    }
    untouched = merge({"train": {"optimizer": {"type": "adamw", "beta1": 0.9}}}, {})
    assert untouched == {"train": {"optimizer": {"type": "adamw", "beta1": 0.9}}}
    tuned = merge(
        {"train": {"optimizer": {"type": "adamw", "beta1": 0.9}}}, {"train": {"optimizer": {"beta1": 0.8}}}
    )
    assert tuned["train"]["optimizer"] == {"type": "adamw", "beta1": 0.8}


def test_rung_job_names_are_the_ladder_and_rung_and_stay_a_label_when_long() -> None:
    assert rung_job_name("adamw-llama", "130m") == "adamw-llama-130m"
    long = rung_job_name("a-very-long-ladder-name-" * 4 + "x", "1-2b")
    assert len(long) <= RUNG_JOB_NAME_LIMIT and long.endswith("-1-2b")
    assert long == rung_job_name("a-very-long-ladder-name-" * 4 + "x", "1-2b")
    assert long != rung_job_name("a-very-long-ladder-name-" * 4 + "y", "1-2b")
    dotted = rung_job_name("team.ladder", "130m")
    assert "." not in dotted and dotted.endswith("-130m")


def test_the_example_is_marins_adamw_ladder_and_speedrun_info_prints_the_four_runs_numbers() -> None:
    result = CliRunner().invoke(main, ["info", "--json", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert [r["rung"] for r in printed["rungs"]] == list(MARIN_FOLDERS)
    total = 0.0
    for rung in printed["rungs"]:
        recorded = json.loads((MARIN / MARIN_FOLDERS[rung["rung"]] / "speedrun_results.json").read_text())
        info = recorded["runs"][0]["run_info"]
        assert rung["parameters"] == info["model_size"]
        assert rung["totalTokens"] == info["total_tokens"]
        assert rung["modelFlops"] == pytest.approx(info["model_flops"], rel=1e-12)
        assert rung["numChips"] == info["num_chips"]
        assert rung["peakFlopsPerChip"] == pytest.approx(info["device_flops"], rel=1e-12)
        assert rung["deviceType"] == info["resources"]["tpu_type"]
        total += info["model_flops"]
    assert printed["totalModelFlops"] == pytest.approx(total, rel=1e-12)
    table = CliRunner().invoke(main, ["info", str(EXAMPLE)])
    assert table.exit_code == 0 and "adamw-llama-scaling-1-2b" in table.stdout and "total" in table.stdout


def test_each_rung_trains_the_optimizer_settings_its_marin_run_recorded() -> None:
    _, rungs = load_ladder(EXAMPLE)
    for rung in rungs:
        recorded = json.loads((MARIN / MARIN_FOLDERS[rung.name] / "speedrun_results.json").read_text())
        config = recorded["runs"][0]["run_info"]["train_config"]
        optimizer = config["optimizer_config"]
        train = rung.job.spec.train
        assert (train.batch_size, train.steps) == (config["train_batch_size"], config["num_train_steps"])
        assert (train.learning_rate, train.weight_decay) == (
            optimizer["learning_rate"],
            optimizer["weight_decay"],
        )
        assert (train.beta1, train.beta2, train.epsilon) == (
            optimizer["beta1"],
            optimizer["beta2"],
            optimizer["epsilon"],
        )
        assert (train.warmup, train.max_grad_norm) == (optimizer["warmup"], optimizer["max_grad_norm"])
        assert (train.lr_schedule, train.min_lr_ratio) == (
            optimizer["lr_schedule"],
            optimizer["min_lr_ratio"],
        )
        assert rung.job.spec.description == recorded["runs"][0]["run_info"]["description"]


def test_the_example_validates_without_a_warning(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "1 file valid" and result.stderr == ""


def test_a_bad_rung_field_is_named_by_rung_index_and_rung_name(tmp_path: Path) -> None:
    manifest = example()
    manifest["spec"]["rungs"][2]["train"]["batchSize"] = 100
    manifest["spec"]["rungs"][3]["train"]["learningRate"] = None
    manifest["spec"]["base"]["train"]["lrSchedule"] = "cosine_typo"
    stderr = errors_of(manifest, tmp_path)
    assert "spec.base.train.lrSchedule: Input should be" in stderr, "a field's own bound: at the field"
    manifest["spec"]["base"]["train"]["lrSchedule"] = "cosine"
    stderr = errors_of(manifest, tmp_path)
    assert "spec.rungs[2].train.batchSize (520m): must be divisible by the number of chips" in stderr
    assert "spec.rungs[3].train.learningRate (1-2b): required field is missing" in stderr
    assert "Traceback" not in stderr


def test_a_fit_needs_three_rungs(tmp_path: Path) -> None:
    manifest = example()
    manifest["spec"]["rungs"] = manifest["spec"]["rungs"][:2]
    assert "spec.rungs: List should have at least 3 items" in errors_of(manifest, tmp_path)


def test_rung_names_are_folder_names_and_distinct(tmp_path: Path) -> None:
    manifest = example()
    manifest["spec"]["rungs"][0]["name"] = "1_2B"
    manifest["spec"]["rungs"][2]["name"] = "300m"
    stderr = errors_of(manifest, tmp_path)
    assert "spec.rungs[0].name: must be a folder name that can end a Kubernetes name" in stderr
    manifest["spec"]["rungs"][0]["name"] = "130m"
    assert "rung names must differ; 300m appears more than once" in errors_of(manifest, tmp_path)


CUSTOM_MODEL = {"family": "custom", "code": {"image": True, "module": "mine", "configClass": "MyConfig"}}


@pytest.mark.parametrize(("part", "named"), [("base", "base"), ("rung", "rungs[300m]")])
def test_custom_model_code_is_refused_in_one_line_naming_where_it_is(
    part: str, named: str, tmp_path: Path
) -> None:
    manifest = example()
    target = manifest["spec"]["base"] if part == "base" else manifest["spec"]["rungs"][1]
    target["model"] = dict(CUSTOM_MODEL)
    manifest["spec"]["base"].setdefault("train", {})["seqLen"] = 64
    stderr = errors_of(manifest, tmp_path)
    assert f"{named}.model.family: a ladder's rungs cannot run custom model code yet" in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) <= 2


def test_validate_warns_when_no_rung_would_be_listed_on_the_scaling_board(tmp_path: Path) -> None:
    manifest = example()
    manifest["spec"]["rungs"] = manifest["spec"]["rungs"][:3]
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: no rung is expected to use over 3e+20 hardware FLOPs (the largest, 520m" in result.stderr


def test_the_ladders_output_prefix_nests_every_rung_under_the_ladders_folder() -> None:
    manifest = example()
    manifest["spec"]["base"]["output"] = "gs://marin-speedruns/runs"
    _, rungs = parse_ladder(manifest)
    assert {rung.job.spec.output for rung in rungs} == {"gs://marin-speedruns/runs/adamw-llama-scaling"}
    _, defaulted = parse_ladder(example(), "s3://team/out")
    assert defaulted[0].job.spec.output == "s3://team/out/adamw-llama-scaling"


def test_the_ladder_crd_is_generated_structural_described_and_shows_rungs_fit_and_phase() -> None:
    document = yaml.safe_load((ROOT / crd.LADDER_CRD_FILE).read_text())
    assert document == crd.build_ladder_crd()
    assert (ROOT / crd.LADDER_CRD_FILE).read_text() == (ROOT / crd.CHART_LADDER_CRD_FILE).read_text()
    version = document["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]][:3] == ["Rungs", "Projected", "Phase"]
    assert document["spec"]["group"] == "speedrun.marin.community"
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]

    def nodes(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
        found = [(path, node)]
        for name, child in node.get("properties", {}).items():
            found += nodes(child, f"{path}.{name}")
        if "items" in node:
            found += nodes(node["items"], f"{path}[]")
        return found

    every = nodes(spec, "spec")
    assert all("type" in node for _, node in every), [p for p, n in every if "type" not in n]
    assert not [p for p, n in every if not p.endswith("[]") and not n.get("description")]
    rung = spec["properties"]["rungs"]["items"]
    assert rung["required"] == ["name"] and "train" in rung["properties"]
    assert "required" not in rung["properties"]["train"], "a rung gives only what differs from the base"


def test_the_charts_operator_role_lets_it_watch_ladders_write_their_status_and_create_their_rungs() -> None:
    template = (ROOT / "helm" / "speedrun-operator" / "templates" / "rbac-operator.yaml").read_text()
    role = yaml.safe_load(
        "\n".join(line for line in template.splitlines() if "{{" not in line).split("---")[0]
    )
    granted: dict[str, set[str]] = {}
    for rule in role["rules"]:
        if "speedrun.marin.community" in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault(resource, set()).update(rule["verbs"])
    assert {"get", "list", "watch", "patch"} <= granted["speedrunladders"]
    assert "patch" in granted["speedrunladders/status"]
    assert "update" in granted["speedrunladders/finalizers"], "rungs carry blockOwnerDeletion to the ladder"
    assert {"get", "list", "watch", "patch", "create"} <= granted["speedrunjobs"]
