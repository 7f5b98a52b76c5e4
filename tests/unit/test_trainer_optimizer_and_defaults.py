"""The built Levanter config holds the job's optimizer and schedule, Marin's data seed and, for a job that
names no validation sets, the default list: Paloma's c4_en unless the chart or ``speedrun run`` changes it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from levanter.optim import AdamConfig, CautiousConfig, KronConfig, MuonConfig
from levanter.optim.clip_update_norm import ClipUpdateNormConfig
from levanter.optim.config import CosineLrSchedule, PowerLrSchedule
from levanter.optim.skipstep import SkipStepConfig
from levanter.tracker import NoopConfig

from fixtures.trainer import TINY_SPEC, JobFactory, job_document, write_job
from speedrun_operator import eval_sets
from speedrun_operator.api import SpeedrunJob
from speedrun_operator.builders.pods import container_env
from speedrun_operator.cli import main
from speedrun_operator.config import OperatorConfig
from speedrun_trainer import console, runner
from speedrun_trainer.levanter_config import build_train_config
from speedrun_trainer.optimizers import serialised
from speedrun_trainer.paths import RunPaths

pytestmark = pytest.mark.unit

PATHS = RunPaths(output="gs://bucket/runs", job="tiny", local_dir=Path("/tmp/speedrun/default/tiny"))
CHART = Path(__file__).resolve().parents[2] / "helm" / "speedrun-operator"
PALOMA_C4_EN_URLS = ["hf://datasets/allenai/paloma/c4_en/val/val*.jsonl.gz"]
# The default dataset (Marin's FineWeb-Edu cache) with no validationUrls.
DEFAULT_DATASET = {"dataset": {"bundled": False}}


def built(job: Any, **kwargs: Any) -> Any:
    return build_train_config(job.spec, PATHS, "run-1", [NoopConfig()], "sink", **kwargs)


def validation_components(config: Any) -> dict[str, list[str]]:
    return {
        name: list(source.validation_urls)
        for name, source in config.data.configs.items()
        if source.validation_urls and name != "speedrun_train"
    }


def test_muon_gets_its_own_fields_and_the_shared_learning_rate_and_schedule(tiny_job: JobFactory) -> None:
    train = {"learningRate": 0.016, "weightDecay": 0.1, "warmup": 0, "decay": 0.8, "minLrRatio": 0.0,
             "lrSchedule": "linear",
             "optimizer": {"type": "muon", "adamLr": 0.0032, "beta1": 0.8, "beta2": 0.98, "epsilon": 1e-15,
                           "muonEpsilon": 1e-5}}  # fmt: skip
    optimizer = built(tiny_job(train=train)).optimizer
    assert optimizer == MuonConfig(
        learning_rate=0.016, weight_decay=0.1, warmup=0, decay=0.8, min_lr_ratio=0.0, lr_schedule="linear",
        adam_lr=0.0032, beta1=0.8, beta2=0.98, epsilon=1e-15, muon_epsilon=1e-5,
    )  # fmt: skip


def test_adamw_options_marin_runs_use_reach_adamconfig(tiny_job: JobFactory) -> None:
    options = {"type": "adam", "adamcWeightDecay": True, "nesterov": True, "updateRmsClipping": 1.0,
               "skipBadSteps": {"rollingIntervalLength": 64}}  # fmt: skip
    optimizer = built(tiny_job(train={"optimizer": options})).optimizer
    assert isinstance(optimizer, AdamConfig)
    assert (optimizer.adamc_weight_decay, optimizer.nesterov, optimizer.update_rms_clipping) == (
        True,
        True,
        1.0,
    )
    assert optimizer.skip_bad_steps == SkipStepConfig(rolling_interval_length=64)
    clipped = built(tiny_job(train={"optimizer": {"type": "adam", "clipUpdateNorm": {}}})).optimizer
    assert clipped.clip_update_norm == ClipUpdateNormConfig() and clipped.skip_bad_steps is False


def test_cautious_with_adamc_and_kron_build_their_levanter_configs(tiny_job: JobFactory) -> None:
    cautious = built(tiny_job(train={"optimizer": {"type": "cautious", "adamcWeightDecay": True}})).optimizer
    assert cautious == CautiousConfig(learning_rate=3.0e-3, adamc_weight_decay=True)
    kron = built(tiny_job(train={"optimizer": {"type": "kron", "memorySaveMode": "all_diag"}})).optimizer
    assert kron == KronConfig(learning_rate=3.0e-3, memory_save_mode="all_diag")


def test_lr_schedule_parameters_and_power_reach_levanter(tiny_job: JobFactory) -> None:
    cosine = built(tiny_job(train={"lrScheduleConfig": {"type": "cosine", "exponent": 2.0}})).optimizer
    assert cosine.lr_schedule == CosineLrSchedule(exponent=2.0)
    power = built(tiny_job(train={"lrSchedule": "power"})).optimizer
    assert power.lr_schedule == PowerLrSchedule(batch_size=4, seq_length=64)


def test_results_record_the_optimizer_as_levanter_serialises_it_inside_train_lm_config(
    tiny_job: JobFactory,
) -> None:
    import draccus

    config = built(tiny_job(train={"optimizer": {"type": "muon"}}))
    assert serialised(config.optimizer) == draccus.encode(config)["optimizer"]
    assert serialised(config.optimizer)["type"] == "muon"


def test_the_data_seed_is_marins_42_apart_from_the_model_seed(tiny_job: JobFactory) -> None:
    config = built(tiny_job(train={"seed": 7}))
    assert (config.trainer.seed, config.data_seed) == (7, 42)
    assert built(tiny_job(train={"dataSeed": 3})).data_seed == 3


def test_a_job_on_the_default_dataset_naming_no_validation_sets_gets_paloma_c4_en(
    tiny_job: JobFactory,
) -> None:
    assert validation_components(built(tiny_job(**DEFAULT_DATASET))) == {"paloma/c4_en": PALOMA_C4_EN_URLS}
    own = {"dataset": {"bundled": False, "validationUrls": {"mine": ["gs://my-bucket/val.jsonl"]}}}
    assert validation_components(built(tiny_job(**own))) == {"mine": ["gs://my-bucket/val.jsonl"]}
    none = {"dataset": {"bundled": False, "validationUrls": {}}}
    assert validation_components(built(tiny_job(**none))) == {}


def chart_env(values: dict[str, Any]) -> dict[str, str]:
    """The operator's SPEEDRUN_DEFAULT_VALIDATION_SETS as the chart's template renders it from ``values``:
    the template folds the [{name, urls}] list into one JSON object (helm's toJson sorts keys)."""
    template = (CHART / "templates" / "deployment.yaml").read_text()
    assert "SPEEDRUN_DEFAULT_VALIDATION_SETS" in template
    assert (
        "range .Values.defaults.validationSets" in template and "set $validationSets .name .urls" in template
    )
    folded = {entry["name"]: entry["urls"] for entry in values["defaults"]["validationSets"]}
    return {eval_sets.DEFAULT_VALIDATION_ENV: json.dumps(folded, sort_keys=True, separators=(",", ":"))}


def test_the_charts_default_value_is_paloma_c4_en() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert (
        OperatorConfig.from_env(chart_env(values)).default_validation_sets
        == eval_sets.DEFAULT_VALIDATION_SETS
    )


def test_the_chart_value_changes_the_list_a_job_gets(tiny_job: JobFactory) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    values["defaults"]["validationSets"] = [
        {"name": "paloma/wikitext_103", "urls": ["gs://my-bucket/wiki/*.jsonl.gz"]}
    ]
    job = tiny_job(**DEFAULT_DATASET)
    pod_env = {
        var["name"]: var["value"] for var in container_env(job, OperatorConfig.from_env(chart_env(values)))
    }
    # The trainer in the pod reads the list from its environment.
    config = built(job, default_validation=eval_sets.from_env(pod_env))
    assert validation_components(config) == {"paloma/wikitext_103": ["gs://my-bucket/wiki/*.jsonl.gz"]}


def test_the_run_option_changes_the_list_a_job_gets(
    tiny_job: JobFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given: dict[str, Any] = {}

    def train_job(job: Any, **kwargs: Any) -> runner.TrainResult:
        given.update(kwargs, job=job)
        return runner.TrainResult(results_url="(not trained)", run_info={})

    @contextlib.contextmanager
    def console_session(*args: Any, **kwargs: Any) -> Iterator[Any]:
        yield SimpleNamespace(line=lambda text: None, log_path="(no log)")

    # Only the option's path into train_job is under test: no terminal, no Ray, no training.
    monkeypatch.setattr(runner, "train_job", train_job)
    monkeypatch.setattr(console, "console_session", console_session)
    monkeypatch.setattr(console, "start_ray", lambda session: None)
    file = write_job(tiny_job(**DEFAULT_DATASET), tmp_path)
    args = [
        "run",
        str(file),
        "--validation-set",
        "paloma/ptb",
        "--validation-set",
        "mine=gs://my-bucket/a,gs://my-bucket/b",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    config = built(given["job"], default_validation=given["default_validation"])
    assert validation_components(config) == {
        "paloma/ptb": ["hf://datasets/allenai/paloma/ptb/val/val*.jsonl.gz"],
        "mine": ["gs://my-bucket/a", "gs://my-bucket/b"],
    }


def test_a_run_option_that_is_no_paloma_subset_and_no_url_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(tmp_path / "x.yaml"), "--validation-set", "nope"])
    assert result.exit_code == 2
    assert "'nope' is not a Paloma subset" in result.output and "Traceback" not in result.output


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("example", "levanter_class", "settings"),
    [
        ("llama-130m-muon", MuonConfig, {"learning_rate": 0.016, "adam_lr": 0.0032, "lr_schedule": "linear"}),
        ("llama-130m-cautious-adamc", CautiousConfig, {"adamc_weight_decay": True, "weight_decay": 0.1}),
        ("llama-150m-kron", KronConfig, {"preconditioner_lr": 0.2, "update_prob_flat_start": 500}),
    ],
)
def test_each_optimizer_example_trains_with_that_levanter_optimizer(
    example: str, levanter_class: type, settings: dict[str, Any]
) -> None:
    from speedrun_operator.manifests import load_job

    optimizer = built(load_job(EXAMPLES / f"{example}.yaml")).optimizer
    assert type(optimizer) is levanter_class
    assert {name: getattr(optimizer, name) for name in settings} == settings


def unchecked_job(train: dict[str, Any]) -> SpeedrunJob:
    """The tiny job without the cross-field checks (which refuse what the pinned Levanter cannot train)."""
    return SpeedrunJob.model_validate(
        job_document("tiny", {**TINY_SPEC, "train": {**TINY_SPEC["train"], **train}})
    )


def test_kron_and_sophia_h_serialise_with_their_registry_names_and_schedule() -> None:
    # draccus cannot encode the declared type of Kron's float-or-callable field, only its value.
    for name in ("kron", "sophia-h"):
        encoded = serialised(built(unchecked_job({"optimizer": {"type": name}})).optimizer)
        assert encoded["type"] == name and encoded["learning_rate"] == 3.0e-3
    schedule = {"lrScheduleConfig": {"type": "cosine", "exponent": 2.0}, "optimizer": {"type": "kron"}}
    assert serialised(built(unchecked_job(schedule)).optimizer)["lr_schedule"] == {
        "type": "cosine",
        "exponent": 2.0,
    }


def test_results_say_which_optimizer_seeds_and_validation_sets_the_run_used(tiny_job: JobFactory) -> None:
    from datetime import UTC, datetime

    from speedrun_trainer.results import RunOutcome, results_document
    from speedrun_trainer.step_log import RunHistory, StepRecord

    job = tiny_job(train={"optimizer": {"type": "muon"}, "seed": 7}, **DEFAULT_DATASET)
    config = built(job)
    outcome = RunOutcome(
        history=RunHistory(steps={0: StepRecord(0, 1.0)}, evals={}, attempts=["a"]),
        model_config={},
        num_devices=1,
        eval_dataset="paloma/c4_en",
        completed_at=datetime(2026, 12, 1, tzinfo=UTC),
        wandb_run_link=None,
        image=None,
        optimizer_config=serialised(config.optimizer),
        validation_sets=validation_components(config),
    )
    info = json.loads(results_document(job, outcome))["runs"][0]["run_info"]
    assert info["train_config"]["optimizer_config"] == json.loads(json.dumps(serialised(config.optimizer)))
    assert (info["train_config"]["seed"], info["train_config"]["data_seed"]) == (7, 42)
    assert info["validation_sets"] == {"paloma/c4_en": PALOMA_C4_EN_URLS}
    assert info["validation_sets_default"] is True and info["eval_dataset"] == "paloma/c4_en"
