"""A results file → the SpeedrunJob that reproduces its run (``speedrun import``): the inverse of what the
trainer records.

The model comes from the recorded ``model_config`` through the same reader ``speedrun validate`` uses
(``recorded.shape_of``: the family told by its Levanter fields, the shape and options read into a
``ModelShape``, whose fields are the model section's). The train section comes from ``train_config``, whose
keys are the train section's own names (Marin's SimpleTrainConfig, which the API mirrors) but for four
renames, and from ``optimizer_config``, Levanter's optimizer as recorded: its type (named, or recognised by
the fields only that optimizer has) and each field that differs from Levanter's default. What the pinned
Levanter cannot build from the API — a submission's own model class, a field this Levanter lacks, a
checkpoint to start from — is a line naming the key; the caller writes nothing unless told to write
what it can.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast, get_args

from pydantic import ValidationError

from speedrun_operator import accelerators
from speedrun_operator.api import SpeedrunJob
from speedrun_operator.api.base import API_VERSION, GROUP, KIND
from speedrun_operator.api.dataset import BUNDLED, MARIN_FINEWEB_EDU_10B, MARIN_TOKENIZER, DatasetSpec
from speedrun_operator.api.families import FAMILIES, MOE_FIELDS
from speedrun_operator.api.model import (
    DEFAULT_EXPERTS_PER_TOKEN,
    DEFAULT_LBL_COEF,
    DEFAULT_ROUTED_EXPERTS,
    DEFAULT_RZL_COEF,
    DEFAULT_SHARED_EXPERTS,
    AttentionBackend,
    ModelShape,
    ModelSpec,
)
from speedrun_operator.api.optimizers import LR_SCHEDULE_MODELS, OPTIMIZER_MODELS
from speedrun_operator.api.resources import ResourcesSpec
from speedrun_operator.api.status import RunInfo
from speedrun_operator.api.train import MARIN_DATA_SEED, TrainSpec
from speedrun_operator.runinfo.compute import ESTIMATE_MFU
from speedrun_operator.submissions.consistency import show
from speedrun_operator.submissions.recorded import (
    NEWER_MODEL_KEYS,
    Unrecomputable,
    as_marin_resources,
    expected_from_recorded,
    shape_of,
)

SOURCE_ANNOTATION = f"{GROUP}/imported-from"
RECORDED_ANNOTATION = f"{GROUP}/recorded-run"
"""What the original run recorded of its hardware and counts (JSON), for ``speedrun info`` to compare."""

_RAW_TEXT = re.compile(r"(\*|\.(jsonl|json|txt)(\.(gz|zst|xz|bz2))?)$")
"""A raw text file (or a glob of them) rather than a token cache (a folder)."""
MARIN_DEFAULT_STEPS_PER_EXPORT = 10000
MARIN_SUBMISSIONS = "experiments/speedrun"

TRAIN_RENAMES = {
    "train_batch_size": "batch_size",
    "num_train_steps": "steps",
    "steps_per_export": "steps_per_checkpoint",
    "train_seq_len": "seq_len",
}
"""train_config keys whose train-section field has another name; every other key is the field's own. The
inverse of ``trainer/results.train_config`` (the round-trip test fails when the two part)."""
UNSUPPORTED_TRAIN_KEYS = {
    "initialize_from_checkpoint_path": "the run started from a checkpoint, which a SpeedrunJob cannot name",
    "initialize_from_hf": "the run started from a Hugging Face checkpoint, which a SpeedrunJob cannot name",
    "int8": "int8 training is not offered by the API",
}
"""train_config keys that change the run when set (not null, not false) and that the API has no field for."""

SHARED_DEFAULTS: dict[str, Any] = {
    "weight_decay": 0.1,
    "warmup": 0.01,
    "decay": None,
    "rewarmup": 0.0,
    "min_lr_ratio": 0.1,
    "cycle_length": None,
    "cycles": None,
    "weight_decay_modules": None,
    "default_weight_decay_mask": None,
    "lr_schedule": "cosine",
}
"""Levanter's OptimizerConfig defaults of the fields the train section holds for every optimizer."""
NO_WEIGHT_DECAY = frozenset({"mini", "muon", "scion", "soap"})
"""Optimizers whose Levanter class defaults weight_decay to 0."""
ADAMW_SCALARS = ("beta1", "beta2", "epsilon", "max_grad_norm")
"""The default AdamW's fields that the train section holds itself (SimpleTrainConfig's scalars)."""
NEUTRAL_OPTIMIZER_FIELDS: dict[str, Any] = {
    "cooldown": None,
    "haps": None,
    "params_sharding": None,
    "preconditioner_sharding": None,
    "power_of_schedule": 1.0,
}
"""Recorded optimizer fields the API does not offer (Levanter's deprecated ones, Kron's sharding, which the
trainer's mesh decides, and one from another Levanter branch), with the value at which each changes
nothing."""

ANY = object()
NEUTRAL_MODEL_FIELDS: dict[str, Any] = {
    "tokenizer": ANY,
    "reference_checkpoint": ANY,
    "cross_entropy_block_size": ANY,
    "flash_attention_block_size": ANY,
    "use_flash_attention": ANY,
    "use_layer_norm_weight": True,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "use_sliding_window": False,
    "sliding_window": ANY,
    "rope_scaling": None,
}
"""Levanter model fields the API does not set: ANY where the value changes no number the run produces (the
tokenizer, kernel block sizes, the attention kernel), else the value the trainer always trains with."""
RESULTS_KEY_OF = {
    "author": "author",
    "description": "description",
    "model": "model_config",
    "train": "train_config",
    "resources": "resources",
    "dataset": "tokenized_dataset",
}
"""The run_info key each section of the imported SpeedrunJob comes from, for naming it in an error."""
MODEL_RENAMES = {"activation_function": "activation"}
"""model_config keys whose ModelShape field has another name (rope's theta is read apart)."""


class ImportFailed(ValueError):
    """The input is no results file this can read: one line naming the key."""


@dataclass(frozen=True)
class Imported:
    job: SpeedrunJob
    """The SpeedrunJob that reproduces the run, as far as the results allow."""
    missing: list[str]
    """What the results do not hold enough of to reproduce the run exactly."""

    def manifest(self) -> dict[str, Any]:
        """The job as a file: only what the import set (both seeds included), and its annotations."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.job.name, "annotations": dict(self.job.metadata.annotations)},
            "spec": self.job.spec.model_dump(mode="json", exclude_unset=True),
        }


def run_infos(text: str, where: str) -> list[dict[str, Any]]:
    """Each run's run_info in a results document ``{"runs": [{"run_info": {...}}, ...]}``."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFailed(f"{where}: not JSON ({exc.msg} at line {exc.lineno})") from None
    runs = document.get("runs") if isinstance(document, dict) else None
    if not isinstance(runs, list) or not runs:
        raise ImportFailed(f'{where}: runs: {_found(runs)}, expected a list of {{"run_info": {{...}}}}')
    infos = []
    for index, run in enumerate(runs):
        info = run.get("run_info") if isinstance(run, dict) else None
        if not isinstance(info, dict):
            raise ImportFailed(f"{where}: runs[{index}].run_info: {_found(info)}, expected an object")
        infos.append(info)
    return infos


def import_run(info: Mapping[str, Any], name: str, source: str) -> Imported:
    """The SpeedrunJob ``name`` for one run_info; raises ImportFailed when not even a partial job can be made
    (no model of a known family, no steps, no hardware)."""
    missing: list[str] = []
    model = _model(_object(info, "model_config"), source, missing)
    train_config = _object(info, "train_config")
    train = _train(train_config, model, missing)
    spec: dict[str, Any] = {
        "author": _without_nulls(info.get("author")),
        "description": info.get("description") or f"Imported from {source}",
        "model": model,
        "train": train,
        "resources": _resources(_object(info, "resources")),
        "dataset": _dataset(info),
    }
    manifest = {
        "metadata": {
            "name": name,
            "annotations": {SOURCE_ANNOTATION: source, RECORDED_ANNOTATION: json.dumps(_recorded(info))},
        },
        "spec": {key: value for key, value in spec.items() if value is not None},
    }
    try:
        job = SpeedrunJob.model_validate(manifest)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first["loc"]]
        section = loc[1] if len(loc) > 1 and loc[0] == "spec" else ""
        raise ImportFailed(
            f"{RESULTS_KEY_OF.get(section, 'run_info')} (the SpeedrunJob's {'.'.join(loc)}): "
            f"{_found(first.get('input'))}, {first['msg']}"
        ) from None
    return Imported(job, missing)


def job_name(parts: list[str]) -> str:
    """A Kubernetes name from path parts: ['muon_llama_scaling', '130m'] → muon-llama-scaling-130m."""
    name = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
    return name[:63].rstrip("-") or "imported-run"


def _model(config: Mapping[str, Any], source: str, missing: list[str]) -> dict[str, Any]:
    try:
        shape = shape_of(config)
    except Unrecomputable as exc:
        raise ImportFailed(str(exc.problem)) from None
    family = FAMILIES[shape.family]
    read = {field.name for field in dataclasses.fields(ModelShape)} | set(MODEL_RENAMES) | {"rope"}
    read |= set(NEWER_MODEL_KEYS)
    unknown = sorted(
        key
        for key, value in config.items()
        if key not in read and key not in MOE_FIELDS and not _neutral(NEUTRAL_MODEL_FIELDS, key, value)
    )
    if unknown:
        folder = source.rsplit("/", 1)[0] if "/" in source else "."
        missing.append(
            f"model_config: {', '.join(unknown)}: no field of Levanter's {family.levanter_config}: "
            "the run used its own model code, which is not in the results but in "
            f"the submission's .py script beside them ({folder}/*.py; for Marin's runs, "
            f"{MARIN_SUBMISSIONS}/<run>/ in marin-community/marin)"
        )
    rope = config.get("rope") or {}
    if not isinstance(rope, dict) or set(rope) - {"theta", "factor"} or rope.get("factor", 1.0) != 1.0:
        missing.append(f"model_config.rope: {show(rope)}: the API trains Levanter's default rope, theta only")
    theta = rope.get("theta", 10000.0) if isinstance(rope, dict) else 10000.0
    return _differing_from_defaults(
        _spec_fields(dataclasses.replace(shape, rope_theta=float(theta), attn_backend=_backend(config))),
        family.layer_norm_epsilon,
    )


def _backend(config: Mapping[str, Any]) -> AttentionBackend | None:
    """The recorded attention backend: by its enum's name (SPLASH), which the API spells by value."""
    recorded = config.get("attn_backend")
    if recorded is None:
        return None
    for backend in get_args(AttentionBackend):
        if backend == str(recorded).lower():
            return cast(AttentionBackend, backend)
    raise ImportFailed(
        f"model_config.attn_backend: found {show(recorded)}, "
        f"expected one of {', '.join(get_args(AttentionBackend))}"
    )


def _spec_fields(shape: ModelShape) -> dict[str, Any]:
    """ModelShape → the model section's fields (the same names; the experts flattened, an auxiliary loss
    that is off written as 0)."""
    fields = {field.name: getattr(shape, field.name) for field in dataclasses.fields(shape)}
    moe = fields.pop("moe")
    if moe is not None:
        for name, value in dataclasses.asdict(moe).items():
            fields[name] = 0.0 if name.endswith("_coef") and value is None else value
    return fields


def _differing_from_defaults(fields: dict[str, Any], layer_norm_epsilon: float) -> dict[str, Any]:
    """The fields whose value is not what the model section means when they are left out."""
    defaults = {name: info.default for name, info in ModelSpec.model_fields.items()}
    defaults |= {
        "layer_norm_epsilon": layer_norm_epsilon,
        "n_routed_experts": DEFAULT_ROUTED_EXPERTS,
        "num_experts_per_tok": DEFAULT_EXPERTS_PER_TOKEN,
        "n_shared_experts": DEFAULT_SHARED_EXPERTS,
        "lbl_coef": DEFAULT_LBL_COEF,
        "rzl_coef": DEFAULT_RZL_COEF,
    }
    return {name: value for name, value in fields.items() if value != defaults[name]}


def _train(config: Mapping[str, Any], model: Mapping[str, Any], missing: list[str]) -> dict[str, Any]:
    for key, why in UNSUPPORTED_TRAIN_KEYS.items():
        if config.get(key) not in (None, False):
            missing.append(f"train_config.{key}: {show(config[key])}: {why}")
    for key in ("num_train_steps", "train_batch_size", "learning_rate"):
        if config.get(key) is None and not (key == "learning_rate" and config.get("optimizer_config")):
            raise ImportFailed(f"train_config.{key}: missing, expected what the run trained with")
    given = {TRAIN_RENAMES.get(key, key): value for key, value in config.items() if value is not None}
    train = {name: given[name] for name in TrainSpec.model_fields if name in given}
    batch = train.pop("batch_size", None)
    if isinstance(batch, list):
        train["batch_schedule"] = [_schedule_step(step) for step in batch]
    elif batch is not None:
        train["batch_size"] = batch
    if train.get("steps_per_checkpoint") == MARIN_DEFAULT_STEPS_PER_EXPORT:
        del train["steps_per_checkpoint"]
    if train.get("seq_len") == model.get("seq_len"):
        train.pop("seq_len", None)
    train["seed"] = given.get("seed", 0)
    train["data_seed"] = given.get("data_seed", MARIN_DATA_SEED)
    recorded = config.get("optimizer_config")
    if isinstance(recorded, dict):
        _optimizer(recorded, train, missing)
    elif config.get("skip_bad_steps") not in (None, False):
        train["optimizer"] = {"type": "adam", "skip_bad_steps": {}}
        for name in ADAMW_SCALARS:
            if name in train:
                train["optimizer"][name] = train.pop(name)
    return train


def _schedule_step(step: Any) -> dict[str, Any]:
    if not isinstance(step, dict):
        raise ImportFailed(
            f'train_config.train_batch_size: {_found(step)}, expected {{"start": S, "value": N}}'
        )
    return {"start_step": step.get("start"), "batch_size": step.get("value")}


def _optimizer(recorded: Mapping[str, Any], train: dict[str, Any], missing: list[str]) -> None:
    """Fold the recorded optimizer into ``train``: the shared fields onto train itself, the optimizer's own
    fields that differ from Levanter's defaults into train.optimizer (or, for AdamW, into the scalars)."""
    where = "train_config.optimizer_config"
    kind = recorded.get("type") or _recognise(recorded, where, missing)
    if kind is None:
        return
    model = OPTIMIZER_MODELS.get(str(kind))
    if model is None:
        raise ImportFailed(f"{where}.type: {_found(kind)}, expected one of {', '.join(OPTIMIZER_MODELS)}")
    if "learning_rate" in recorded:
        train["learning_rate"] = recorded["learning_rate"]
    for name, default in SHARED_DEFAULTS.items():
        if name == "weight_decay" and kind in NO_WEIGHT_DECAY:
            default = 0.0
        value = recorded.get(name)
        if name not in train and name in recorded and value != default:
            train[name] = value
    schedule = train.pop("lr_schedule", None)
    if isinstance(schedule, dict):
        train["lr_schedule_config"] = _lr_schedule(schedule, f"{where}.lr_schedule")
    elif schedule is not None:
        train["lr_schedule"] = schedule
    own_fields = set(model.model_fields) - {"type"}
    for key in sorted(set(recorded) - own_fields - set(SHARED_DEFAULTS) - {"type", "learning_rate"}):
        if not _neutral(NEUTRAL_OPTIMIZER_FIELDS, key, recorded[key]):
            missing.append(
                f"{where}.{key}: {show(recorded[key])}: the pinned Levanter's {kind} has no such field"
            )
    own = {
        name: _api_value(name, recorded[name])
        for name in own_fields
        if name in recorded and _api_value(name, recorded[name]) != model.model_fields[name].default
    }
    if kind == "adam" and set(own) <= set(ADAMW_SCALARS):
        for name, value in own.items():
            train.setdefault(name, value)
        return
    for name in ADAMW_SCALARS:
        if name in train:
            own.setdefault(name, train.pop(name))
    train["optimizer"] = {"type": kind, **dict(sorted(own.items()))}


def _recognise(recorded: Mapping[str, Any], where: str, missing: list[str]) -> str | None:
    """The optimizer whose fields the record has (Marin records Levanter's config without its type): the one
    with all the recorded fields and the fewest others. An older Levanter recorded a field or two fewer (Muon
    had no use_kimi_scaling), so a record fits only when no other optimizer is within one field of it; the
    generic fields alone (beta1, beta2, epsilon, max_grad_norm) fit Lion, ADOPT, MARS and a submission's own
    Adamax alike, and do not say which ran."""
    own = set(recorded) - set(SHARED_DEFAULTS) - set(NEUTRAL_OPTIMIZER_FIELDS) - {"learning_rate"}
    fits = sorted(
        (len(set(model.model_fields) - {"type"} - own), name)
        for name, model in OPTIMIZER_MODELS.items()
        if own <= set(model.model_fields)
    )
    fields = ", ".join(sorted(own))
    if not fits:
        missing.append(
            f"{where}: fields {fields} are those of no optimizer the pinned Levanter registers: the run used "
            "its own optimizer code (the submission's .py script beside its results)"
        )
        return None
    close = [name for extra, name in fits[1:] if extra <= fits[0][0] + 1]
    if close:
        missing.append(
            f"{where}: fields {fields} fit {', '.join([fits[0][1], *close[:-1]])} and {close[-1]} alike "
            "(Marin records no "
            "type): the submission's .py script beside its results names the optimizer; --partial writes "
            f"{fits[0][1]}"
        )
    return fits[0][1]


def _api_value(name: str, value: Any) -> Any:
    """A recorded Levanter value as the API holds it: Levanter's skip_bad_steps=False is the API's unset."""
    if name == "skip_bad_steps":
        return None if value is False else ({} if value is True else value)
    return value


def _lr_schedule(recorded: Mapping[str, Any], where: str) -> dict[str, Any]:
    kind = recorded.get("type")
    model = LR_SCHEDULE_MODELS.get(str(kind))
    if model is None:
        raise ImportFailed(f"{where}.type: {_found(kind)}, expected one of {', '.join(LR_SCHEDULE_MODELS)}")
    params = {
        name: recorded[name]
        for name in model.model_fields
        if name != "type" and name in recorded and recorded[name] != model.model_fields[name].default
    }
    return {"type": kind, **params}


def _resources(recorded: Mapping[str, Any]) -> dict[str, Any]:
    """Marin's resources (a TPU slice, or a GPU type and count) or ours (the SpeedrunJob's section)."""
    recorded = as_marin_resources(recorded)
    if recorded.keys() & {"gpu", "tpu", "cpu"}:
        return dict(recorded)
    section: dict[str, Any]
    if "tpu_type" in recorded:
        slices = recorded.get("slice_count") or 1
        section = {"tpu": {"type": recorded["tpu_type"], **({"slices": slices} if slices != 1 else {})}}
    elif "accelerator_type" in recorded:
        section = {"gpu": {"type": recorded["accelerator_type"], "count": recorded.get("gpu_count", 1)}}
    else:
        raise ImportFailed(
            f"resources: {_found(dict(recorded))[:80]}, expected a GPU (accelerator_type, gpu_count) "
            "or a TPU (tpu_type)"
        )
    if recorded.get("device_flops_override") is not None:
        section["peak_flops_per_chip"] = recorded["device_flops_override"]
    return section


def _dataset(info: Mapping[str, Any]) -> dict[str, Any]:
    """tokenized_dataset as ``DatasetSpec.describe()`` writes it: the bundled corpus, raw text files (comma
    separated; told from a cache, a folder, by their file names or globs) or a token cache."""
    recorded = info.get("tokenized_dataset")
    tokenizer = (info.get("model_config") or {}).get("tokenizer")
    if recorded == DatasetSpec(bundled=True).describe():
        return {"bundled": True}
    dataset: dict[str, Any] = {}
    if isinstance(recorded, str) and recorded not in ("", MARIN_FINEWEB_EDU_10B):
        urls = recorded.split(",")
        if all(_RAW_TEXT.search(url) for url in urls):
            dataset["train_urls"] = urls
        else:
            dataset["cache_url"] = recorded
    if tokenizer not in (None, MARIN_TOKENIZER, BUNDLED):
        dataset["tokenizer"] = tokenizer
        vocab = info.get("vocab_size")
        if vocab is not None and accelerators.tables().tokenizer_vocab.get(tokenizer) != vocab:
            dataset["vocab_size"] = vocab
    if info.get("validation_sets_default") is False and isinstance(info.get("validation_sets"), dict):
        dataset["validation_urls"] = info["validation_sets"]
    return dataset


def _recorded(info: Mapping[str, Any]) -> dict[str, Any]:
    """The original run's hardware and counts, as its results hold them (chips and peak FLOP/s as
    ``speedrun validate`` reads them from the recorded resources)."""
    keys = ("model_size", "total_tokens", "model_flops", "training_time")
    recorded: dict[str, Any] = {key: info[key] for key in keys if key in info}
    with contextlib.suppress(Unrecomputable, ImportFailed, ValidationError):
        expected = expected_from_recorded(info)
        recorded["chips"] = expected.chips
        recorded["peak_flops_per_chip"] = expected.peak_flops_per_chip
        recorded["hardware"] = ResourcesSpec.model_validate(_resources(_object(info, "resources"))).describe()
    return recorded


def _without_nulls(value: Any) -> Any:
    return (
        {key: item for key, item in value.items() if item is not None} if isinstance(value, dict) else value
    )


def _neutral(table: Mapping[str, Any], key: str, value: Any) -> bool:
    return key in table and (
        table[key] is ANY or table[key] == value or (table[key] is None and value is None)
    )


def _object(info: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = info.get(key)
    if not isinstance(value, dict):
        raise ImportFailed(f"{key}: {_found(value)}, expected an object (the config Marin records)")
    return value


def _found(value: Any) -> str:
    return "missing" if value is None else f"found {show(value)}"


def compare_with_recorded(job: SpeedrunJob, info: RunInfo) -> list[tuple[str, str]]:
    """For an imported job, ``speedrun info``'s rows beside the recorded run: what stays (parameters, tokens,
    model FLOPs) and what its hardware changes (chips, peak FLOP/s, the time estimate). None without the
    annotation."""
    text = job.metadata.annotations.get(RECORDED_ANNOTATION)
    if text is None:
        return []
    recorded = json.loads(text)
    counts = (
        ("parameters", "model_size", info.parameters),
        ("total tokens", "total_tokens", info.total_tokens),
        ("model FLOPs", "model_flops", info.model_flops),
    )
    same = [label for label, key, value in counts if recorded.get(key) == value]
    differs = [f"{label} {recorded[key]:,} → {value:,}" for label, key, value in counts if label not in same]
    rows = [("same as recorded", ", ".join(same) or "nothing")]
    if differs:
        rows.append(("changed from recorded", "; ".join(differs)))
    if "chips" in recorded:
        before = recorded.get("model_flops", info.model_flops) / (
            recorded["chips"] * recorded["peak_flops_per_chip"] * ESTIMATE_MFU
        )
        trained = f", trained in {_minutes(recorded['training_time'])}" if "training_time" in recorded else ""
        rows.append(
            (
                "recorded hardware",
                f"{recorded.get('hardware', '?')}: {recorded['chips']} chips x "
                f"{recorded['peak_flops_per_chip']:.4e} FLOP/s{trained}",
            )
        )
        rows.append(
            (
                "hardware changes",
                f"chips {recorded['chips']} → {info.num_chips}; peak FLOP/s per chip "
                f"{recorded['peak_flops_per_chip']:.4e} → {info.peak_flops_per_chip:.4e}; time at 50% MFU "
                f"{_minutes(before)} → {_minutes(info.estimated_seconds_at_50pct_mfu)}",
            )
        )
    return rows


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
