"""A results file checked on its own, against the configs it records (a Marin folder: a .py script beside it).

Marin writes the Levanter model config, the train config and the resources into ``run_info``. From those:
parameters and model FLOPs per token with :mod:`speedrun_operator.runinfo` for the config's family (told by
the fields only its Levanter class has, ``api.families.family_of_model_config``), total tokens = batch x
sequence length x steps (schedule-aware), model FLOPs = 3 x FLOPs per token x tokens, hardware FLOPs =
training time x chips x peak FLOP/s of the recorded accelerator. The vocabulary is the recorded
``vocab_size``, else Marin's tokenizer's 128,256 (Marin hard-codes it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from pydantic import ValidationError

from speedrun_operator import accelerators
from speedrun_operator.api.families import FAMILIES, FamilyName, family_of_model_config
from speedrun_operator.api.model import ModelShape, MoeShape
from speedrun_operator.api.resources import ResourcesSpec
from speedrun_operator.runinfo import flops_per_token, total_trainable_params
from speedrun_operator.runinfo.keys import C4_EN_BPB, REQUIRED_RUN_INFO_KEYS
from speedrun_operator.submissions.consistency import Problem, show

MARIN_VOCAB_SIZE = 128_256
SHAPE_KEYS = ("seq_len", "hidden_dim", "intermediate_dim", "num_heads", "num_kv_heads", "num_layers")
MOE_KEYS = ("n_routed_experts", "num_experts_per_tok", "n_shared_experts")
REL_TOL = 1e-9


class Unrecomputable(ValueError):
    """The recorded configs do not say enough to recompute the numbers: the key, what it holds, the need."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


@dataclass(frozen=True)
class Expected:
    parameters: int
    flops_per_token: float
    total_tokens: int
    model_flops: float
    chips: int
    peak_flops_per_chip: float
    vocab_size: int


NEWER_MODEL_KEYS = {"max_seq_len": "seq_len"}
"""model_config keys a newer Levanter renamed (Marin's runs from December 2025 on), with the pinned name."""


def shape_of(model_config: Mapping[str, Any]) -> ModelShape:
    """The model a recorded ``model_config`` describes, for each family whose counts runinfo knows."""
    model_config = {NEWER_MODEL_KEYS.get(key, key): value for key, value in model_config.items()}
    family = family_of_model_config(model_config)
    if family is None or family not in FAMILIES:
        raise Unrecomputable(
            Problem(
                "model_config",
                "a config of no family known here",
                f"a config of one of {', '.join(FAMILIES)}",
            )
        )
    return _shape(model_config, family)


def expected_from_recorded(info: Mapping[str, Any]) -> Expected:
    model_config = _object(info, "model_config")
    train_config = _object(info, "train_config")
    resources = _object(info, "resources")
    shape = shape_of(model_config)
    vocab = info.get("vocab_size", MARIN_VOCAB_SIZE)
    if not _is_int(vocab) or vocab < 1:
        raise Unrecomputable(Problem("vocab_size", show(vocab), "a whole number > 0"))
    seq_len = train_config.get("train_seq_len") or shape.seq_len
    if not _is_int(seq_len) or seq_len < 1:
        raise Unrecomputable(
            Problem("train_config.train_seq_len", show(seq_len), "a whole number > 0 or null")
        )
    tokens = _sequences(train_config) * seq_len
    per_token = flops_per_token(shape, vocab, seq_len)
    chips, peak = _hardware(resources)
    return Expected(
        parameters=total_trainable_params(shape, vocab),
        flops_per_token=per_token,
        total_tokens=tokens,
        model_flops=3 * per_token * tokens,
        chips=chips,
        peak_flops_per_chip=peak,
        vocab_size=vocab,
    )


def check_recorded(info: Mapping[str, Any], prefix: str = "") -> list[Problem]:
    """Every way ``info`` disagrees with the configs it records (or why they cannot be checked)."""
    problems = [
        Problem(prefix + key, "no such key", "a key Marin results files have")
        for key in REQUIRED_RUN_INFO_KEYS
        if key not in info
    ]
    try:
        expected = expected_from_recorded(info)
    except Unrecomputable as exc:
        return [*problems, Problem(prefix + exc.problem.key, exc.problem.found, exc.problem.expected)]
    basis = "(recomputed from the recorded model_config and train_config)"
    checks: list[tuple[str, float, str]] = [
        ("model_size", expected.parameters, ""),
        ("total_tokens", expected.total_tokens, ""),
        ("model_flops", expected.model_flops, " = 3 x FLOPs per token x total tokens"),
        ("model_flops_per_token", expected.flops_per_token, ""),
        ("num_chips", expected.chips, ""),
        ("device_flops", expected.peak_flops_per_chip, ""),
    ]
    for key, value, how in checks:
        if key in info and not _matches(info[key], value, exact=isinstance(value, int)):
            shown = show(value) if isinstance(value, int) else repr(value)
            problems.append(Problem(prefix + key, show(info[key]), f"{shown}{how} {basis}"))
    time = info.get("training_time")
    if not _is_number(time) or not math.isfinite(time) or time < 0:
        if "training_time" in info:
            problems.append(Problem(prefix + "training_time", show(time), "a finite number >= 0"))
    elif "training_hardware_flops" in info:
        hardware = time * expected.chips * expected.peak_flops_per_chip
        if not _matches(info["training_hardware_flops"], hardware, exact=False):
            problems.append(
                Problem(
                    prefix + "training_hardware_flops",
                    show(info["training_hardware_flops"]),
                    f"{hardware!r} = training_time {show(time)} x {expected.chips} chips x "
                    f"{expected.peak_flops_per_chip:g} FLOP/s (from the recorded resources)",
                )
            )
    bpb = info.get(C4_EN_BPB)
    if C4_EN_BPB in info and bpb is not None and (not _is_number(bpb) or not math.isfinite(bpb) or bpb <= 0):
        problems.append(Problem(prefix + C4_EN_BPB, show(bpb), "a finite number > 0 or null"))
    author = info.get("author")
    if "author" in info and not (isinstance(author, dict) and isinstance(author.get("name"), str)):
        problems.append(Problem(prefix + "author", show(author), "an object with a name"))
    return problems


def _shape(config: Mapping[str, Any], family: FamilyName) -> ModelShape:
    shape = {key: _whole(config, key) for key in SHAPE_KEYS}
    head_dim = config.get("head_dim")
    if head_dim is not None and (not _is_int(head_dim) or head_dim < 1):
        raise Unrecomputable(Problem("model_config.head_dim", show(head_dim), "a whole number > 0 or null"))
    moe = None
    if family == "mixtral":
        n_routed, per_token, shared = (_whole(config, key, minimum=0) for key in MOE_KEYS)
        moe = MoeShape(n_routed, per_token, shared, config.get("lbl_coef"), config.get("rzl_coef"))
    return ModelShape(
        family=family,
        **shape,
        head_dim=head_dim,
        activation=str(config.get("activation_function", "silu")),
        rope_theta=10000.0,
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        gradient_checkpointing=bool(config.get("gradient_checkpointing", True)),
        scan_layers=bool(config.get("scan_layers", True)),
        layer_norm_epsilon=float(config.get("layer_norm_epsilon") or FAMILIES[family].layer_norm_epsilon),
        initializer_range=float(config.get("initializer_range", 0.02)),
        use_bias=bool(config.get("use_bias", False)),
        hybrid_norm=bool(config.get("hybrid_norm", False)),
        use_qk_norm=bool(config.get("use_qk_norm", False)),
        input_embedding_norm=bool(config.get("input_embedding_norm", False)),
        upcast_attn=bool(config.get("upcast_attn", False)),
        attn_backend=None,
        moe=moe,
    )


def _sequences(train: Mapping[str, Any]) -> int:
    """Sequences over all steps: a fixed batch, or Marin's schedule [{start, value}, ...] from each start."""
    steps = _whole(train, "num_train_steps", where="train_config")
    batch = train.get("train_batch_size")
    if _is_int(batch) and batch > 0:
        return int(batch) * steps
    if isinstance(batch, list) and batch and all(_is_schedule_step(item) for item in batch):
        pairs = sorted((int(item["start"]), int(item["value"])) for item in batch)
        total = 0
        for index, (start, size) in enumerate(pairs):
            end = pairs[index + 1][0] if index + 1 < len(pairs) else steps
            total += max(0, min(end, steps) - start) * size
        return total
    raise Unrecomputable(
        Problem(
            "train_config.train_batch_size", show(batch), 'a whole number > 0, or [{"start": 0, "value": N}]'
        )
    )


def _hardware(resources: Mapping[str, Any]) -> tuple[int, float]:
    """Chips and peak FLOP/s per chip of the recorded resources: Marin's (a GPU type and count, or a TPU
    slice), or a SpeedrunJob's resources section as this project's trainer records it."""
    resources = as_marin_resources(resources)
    if resources.keys() & {"gpu", "tpu", "cpu"}:
        try:
            ours = ResourcesSpec.model_validate(dict(resources))
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(part) for part in first["loc"])
            raise Unrecomputable(
                Problem(f"resources.{key}", show(first.get("input")), first["msg"])
            ) from None
        return ours.num_chips, ours.peak_flops_per_device
    override = resources.get("device_flops_override")
    if override is not None and (not _is_number(override) or override <= 0):
        raise Unrecomputable(
            Problem("resources.device_flops_override", show(override), "a number > 0 or null")
        )
    if "tpu_type" in resources:
        name = resources["tpu_type"]
        slices = resources.get("slice_count", 1)
        try:
            tpu = accelerators.tpu_slice(str(name))
        except KeyError:
            raise Unrecomputable(
                Problem("resources.tpu_type", show(name), "a TPU slice in data/accelerators.yaml")
            ) from None
        if not _is_int(slices) or slices < 1:
            raise Unrecomputable(Problem("resources.slice_count", show(slices), "a whole number > 0"))
        return tpu.chips * slices, float(override or tpu.peak_flops)
    if "accelerator_type" in resources:
        name = resources["accelerator_type"]
        count = _whole(resources, "gpu_count", where="resources")
        if override is not None:
            return count, float(override)
        try:
            return count, accelerators.gpu_type(str(name)).peak_flops
        except KeyError:
            raise Unrecomputable(
                Problem(
                    "resources.accelerator_type",
                    show(name),
                    "a GPU type in data/accelerators.yaml, or resources.device_flops_override",
                )
            ) from None
    raise Unrecomputable(
        Problem(
            "resources", show(dict(resources))[:80], "a GPU (accelerator_type, gpu_count) or a TPU (tpu_type)"
        )
    )


def as_marin_resources(resources: Mapping[str, Any]) -> Mapping[str, Any]:
    """A newer Marin's TPU resources ({"device": {"kind": "tpu", "variant": "v5p-32"}, "replicas": 1}) in the
    older form (tpu_type, slice_count); anything else as it is."""
    device = resources.get("device")
    if isinstance(device, dict) and device.get("kind") == "tpu" and "variant" in device:
        return {"tpu_type": device["variant"], "slice_count": resources.get("replicas", 1)}
    return resources


def _object(info: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = info.get(key)
    if not isinstance(value, dict):
        raise Unrecomputable(Problem(key, show(value), "an object (the config Marin records)"))
    return value


def _whole(values: Mapping[str, Any], key: str, where: str = "model_config", minimum: int = 1) -> int:
    value = values.get(key)
    if not _is_int(value) or value < minimum:
        raise Unrecomputable(Problem(f"{where}.{key}", show(value), f"a whole number >= {minimum}"))
    return int(value)


def _is_schedule_step(item: Any) -> bool:
    return isinstance(item, dict) and _is_int(item.get("start")) and _is_int(item.get("value"))


def _matches(found: Any, expected: float, exact: bool) -> bool:
    if exact:
        return _is_int(found) and found == expected
    return _is_number(found) and math.isclose(found, expected, rel_tol=REL_TOL)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
