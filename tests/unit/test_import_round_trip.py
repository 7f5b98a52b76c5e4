"""``speedrun import`` is the inverse of what the trainer records: a results file written from a SpeedrunJob
(its model_config and optimizer_config as the trainer builds and serialises them with Levanter, no training)
imports back to that SpeedrunJob's spec; and on Marin's real files the importer writes only what differs from
the pinned Levanter's defaults. These tests import Levanter; the importer does not."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from levanter.models.llama import LlamaConfig
from levanter.models.mixtral import MixtralConfig
from levanter.models.olmo import Olmo2Config
from levanter.models.qwen import Qwen3Config
from levanter.optim import OptimizerConfig

from fixtures.submissions import MARIN_RESULTS as MARIN
from fixtures.submissions import NOT_REPRODUCIBLE, finished_run, speedrun
from fixtures.trainer import REPO, job_document
from speedrun_operator.api import InvalidSpeedrunJob, SpeedrunJob, parse_job
from speedrun_operator.api.optimizers import OPTIMIZER_MODELS
from speedrun_operator.eval_sets import DEFAULT_VALIDATION_SETS
from speedrun_operator.manifests import load_job, load_jobs
from speedrun_operator.runinfo import compute_run_info, seq_len_of
from speedrun_operator.submissions.importer import NEUTRAL_MODEL_FIELDS, NO_WEIGHT_DECAY, SHARED_DEFAULTS
from speedrun_trainer.dataset import validation_sets
from speedrun_trainer.levanter_config import model_config
from speedrun_trainer.optimizers import SHARED_FIELDS, optimizer_config, serialised
from speedrun_trainer.runner import marin_model_config

pytestmark = pytest.mark.unit

EXAMPLES = sorted(p for p in (REPO / "examples").glob("*.yaml"))
LEVANTER_MODELS = {"llama": LlamaConfig, "qwen3": Qwen3Config, "olmo2": Olmo2Config, "mixtral": MixtralConfig}

TINY = {"seqLen": 64, "hiddenDim": 32, "intermediateDim": 64, "numHeads": 2, "numKvHeads": 2, "numLayers": 2}
AUTHOR = {"name": "Ada", "affiliation": "Lab", "url": "example.org/ada"}


def spec(**sections: Any) -> dict[str, Any]:
    return {
        "author": AUTHOR,
        "description": "a run written with only what differs from the defaults",
        "model": TINY,
        "train": {"batchSize": 8, "steps": 20, "learningRate": 1e-3},
        "resources": {"gpu": {"type": "A100", "count": 2}},
        **sections,
    }


TRAINABLE = {"kron": {"memorySaveMode": "all_diag"}}
"""What an optimizer needs beyond its type before the API accepts it."""

EXACT: dict[str, dict[str, Any]] = {
    "adamw-scalars": spec(
        train={
            "batchSize": 8,
            "steps": 20,
            "learningRate": 1e-3,
            "beta2": 0.98,
            "epsilon": 1e-20,
            "maxGradNorm": 2.0,
            "weightDecay": 0.2,
            "warmup": 5,
            "zLossWeight": 1e-4,
            "stepsPerEval": 10,
        }
    ),
    "adam-with-clipping": spec(
        train={
            "batchSize": 8,
            "steps": 20,
            "learningRate": 1e-3,
            "optimizer": {"type": "adam", "updateRmsClipping": 1.0, "skipBadSteps": {}, "beta1": 0.8},
        }
    ),
    "muon-qwen3": spec(
        model={**TINY, "family": "qwen3", "hybridNorm": True, "headDim": 32},
        train={
            "batchSize": 8,
            "steps": 20,
            "learningRate": 0.02,
            "warmup": 0,
            "decay": 0.8,
            "minLrRatio": 0.0,
            "lrSchedule": "linear",
            "optimizer": {"type": "muon", "adamLr": 0.004, "muonEpsilon": 1e-5},
        },
        resources={"tpu": {"type": "v4-8", "slices": 2}},
    ),
    "mixtral-experts": spec(
        model={**TINY, "family": "mixtral", "nRoutedExperts": 16, "numExpertsPerTok": 4, "lblCoef": 0.0},
        train={"batchSize": 8, "steps": 20, "learningRate": 1e-3, "seed": 3, "dataSeed": 7},
    ),
    "olmo2-schedule-and-data": spec(
        model={**TINY, "family": "olmo2", "ropeTheta": 500000.0, "layerNormEpsilon": 1e-5},
        train={
            "batchSchedule": [{"startStep": 0, "batchSize": 4}, {"startStep": 10, "batchSize": 8}],
            "steps": 20,
            "learningRate": 1e-3,
            "lrScheduleConfig": {"type": "inv_sqrt", "timescale": 500.0},
        },
        dataset={
            "cacheUrl": "gs://bucket/tokenized/cache",
            "validationUrls": {"c4": ["gs://bucket/c4.jsonl"]},
        },
    ),
    "raw-text-with-own-tokenizer": spec(
        dataset={
            "trainUrls": ["gs://bucket/text/*.jsonl.gz", "gs://bucket/more.jsonl"],
            "tokenizer": "gs://bucket/my-tokenizer",
            "vocabSize": 32000,
        },
    ),
    "llama-options": spec(
        model={
            **TINY,
            "useQkNorm": True,
            "tieWordEmbeddings": True,
            "attnBackend": "splash",
            "activation": "gelu",
        },
        train={
            "batchSize": 8,
            "steps": 20,
            "learningRate": 1e-3,
            "optimizer": {"type": "kron", "preconditionerLr": 0.2, "memorySaveMode": "all_diag"},
        },
        resources={"cpu": {}, "peakFlopsPerChip": 1e11},
    ),
}


def optimizer_spec(name: str) -> dict[str, Any]:
    train = {"batchSize": 8, "steps": 20, "learningRate": 1e-3, "weightDecay": 0.05}
    return spec(train={**train, "optimizer": {"type": name, **TRAINABLE.get(name, {})}})


def accepted(document: dict[str, Any]) -> bool:
    try:
        parse_job(job_document("probe", document))
    except InvalidSpeedrunJob:
        return False
    return True


EXACT |= {
    f"every-optimizer-{name.lower()}": optimizer_spec(name)
    for name in OPTIMIZER_MODELS
    # The API refuses those the pinned Levanter cannot train here (Sophia-H, ...): no results of those.
    if name != "adam" and accepted(optimizer_spec(name))
}


def recorded_results(tmp_path: Path, job: SpeedrunJob) -> Path:
    """The results file the trainer writes for ``job``: its Levanter model and optimizer configs as
    recorded."""
    spec = job.spec
    recorded_model = marin_model_config(model_config(spec), spec.dataset.resolved_tokenizer)
    recorded_optimizer = serialised(optimizer_config(spec.train, seq_len_of(spec)))
    folder = finished_run(
        tmp_path,
        job,
        model_config=recorded_model,
        optimizer_config=recorded_optimizer,
        validation_sets=validation_sets(spec.dataset, DEFAULT_VALIDATION_SETS),
    )
    return folder / "speedrun_results.json"


def imported(tmp_path: Path, results: Path) -> SpeedrunJob:
    out = tmp_path / "imported.yaml"
    ran = speedrun("import", str(results), "-o", str(out))
    assert ran.returncode == 0, ran.stderr
    return load_job(out)


@pytest.mark.parametrize("name", sorted(EXACT))
def test_our_results_import_back_to_the_spec_that_wrote_them(tmp_path: Path, name: str) -> None:
    job = parse_job(job_document(name, EXACT[name]))
    again = imported(tmp_path, recorded_results(tmp_path, job))
    assert again.spec == job.spec
    assert again.name == name


def test_the_hello_world_example_imports_back_to_itself(tmp_path: Path) -> None:
    job = load_job(REPO / "examples/hello-world-cpu.yaml")
    assert imported(tmp_path, recorded_results(tmp_path, job)).spec == job.spec


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_imports_to_a_job_that_trains_the_same_levanter_configs(
    tmp_path: Path, example: Path
) -> None:
    """Examples spell some defaults out (weightDecay: 0.1, lblCoef: 0.01) and name presets; the import writes
    the full shape and leaves defaults out, so it equals them in what Levanter trains, not letter by letter.
    (Likewise a train.seqLen apart from model.seqLen: the results record only the length trained at.)"""
    for job in load_jobs(example):
        again = imported(tmp_path, recorded_results(tmp_path, job))
        assert marin_model_config(model_config(again.spec), "t") == marin_model_config(
            model_config(job.spec), "t"
        )
        assert serialised(optimizer_config(again.spec.train, seq_len_of(again.spec))) == serialised(
            optimizer_config(job.spec.train, seq_len_of(job.spec))
        )
        assert compute_run_info(again.spec) == compute_run_info(job.spec)
        for same in ("resources", "dataset", "author", "description"):
            assert getattr(again.spec, same) == getattr(job.spec, same), same
        train, original = again.spec.train, job.spec.train
        assert (train.seed, train.data_seed, train.batch_sizes(), train.steps) == (
            original.seed,
            original.data_seed,
            original.batch_sizes(),
            original.steps,
        )


def levanter_default(field: dataclasses.Field[Any]) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def test_the_shared_defaults_are_levanters_for_every_optimizer() -> None:
    assert set(SHARED_DEFAULTS) == {*SHARED_FIELDS, "lr_schedule"}
    for name, cls in OptimizerConfig.get_known_choices().items():
        fields = {field.name: levanter_default(field) for field in dataclasses.fields(cls)}
        expected = {**SHARED_DEFAULTS, "weight_decay": 0.0 if name in NO_WEIGHT_DECAY else 0.1}
        assert {key: fields[key] for key in SHARED_DEFAULTS} == expected, name


def test_model_fields_the_api_leaves_alone_are_at_what_the_trainer_builds() -> None:
    for family, cls in LEVANTER_MODELS.items():
        fields = {field.name: levanter_default(field) for field in dataclasses.fields(cls)}
        for key, value in NEUTRAL_MODEL_FIELDS.items():
            if key in fields and isinstance(value, bool | float | type(None)):
                assert fields[key] == value, (family, key)


LEVANTER_RUNS = [
    path
    for path in sorted(MARIN.rglob("speedrun_results.json"))
    if str(path.parent.relative_to(MARIN)) not in NOT_REPRODUCIBLE
]


@pytest.mark.parametrize("results", LEVANTER_RUNS, ids=lambda path: str(path.parent.relative_to(MARIN)))
def test_an_imported_marin_run_states_only_what_differs_from_levanters_defaults(
    tmp_path: Path, results: Path
) -> None:
    out = tmp_path / "job.yaml"
    assert speedrun("import", str(results), "-o", str(out)).returncode == 0
    written = yaml.safe_load(out.read_text())["spec"]
    job = load_job(out)
    optimizer = job.spec.train.optimizer
    if optimizer is not None:
        cls = OptimizerConfig.get_choice_class(optimizer.type)
        defaults = {field.name: levanter_default(field) for field in dataclasses.fields(cls)}
        for key in set(written["train"]["optimizer"]) - {"type"}:
            name = next(n for n, f in type(optimizer).model_fields.items() if (f.alias or n) == key)
            assert getattr(optimizer, name) != defaults[name], (optimizer.type, name)
    shape_defaults = {
        f.name: levanter_default(f) for f in dataclasses.fields(LEVANTER_MODELS[job.spec.model.family])
    }
    for key, value in json.loads(results.read_text())["runs"][0]["run_info"]["model_config"].items():
        camel = "".join(part if i == 0 else part.title() for i, part in enumerate(key.split("_")))
        if camel in written["model"] and key in shape_defaults and key not in ("seq_len",):
            assert value != shape_defaults[key], key
