"""Every optimizer and LR schedule model is exactly its Levanter dataclass: same fields, types and defaults.

The operator never imports Levanter, so nothing else would notice a Levanter upgrade that adds, renames or
re-defaults a field; this test does, by name.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pytest
from levanter.optim import OptimizerConfig
from levanter.optim.clip_update_norm import ClipUpdateNormConfig
from levanter.optim.config import LrSchedule
from levanter.optim.skipstep import SkipStepConfig
from pydantic import BaseModel

from fixtures.trainer import TINY_SPEC, JobFactory
from speedrun_operator.api import TrainSpec
from speedrun_operator.api.optimizers import (
    LR_SCHEDULE_NAMES,
    OPTIMIZER_MODELS,
    ClipUpdateNormSpec,
    LrScheduleSpec,
    SkipBadStepsSpec,
)
from speedrun_trainer.optimizers import SHARED_FIELDS, levanter_value, lr_schedule, optimizer_config

pytestmark = pytest.mark.unit

BASE_FIELDS = {field.name for field in dataclasses.fields(OptimizerConfig)}
DEPRECATED_BASE_FIELDS = {"cooldown", "haps"}
"""Levanter marks these deprecated (its own warnings say to use the schedule and cycles instead)."""
NOT_OFFERED = {
    ("kron", "params_sharding"): "a pytree of JAX PartitionSpecs, which only code can build",
    ("kron", "preconditioner_sharding"): "mesh axis names: the trainer's device mesh decides them",
}
NARROWED: dict[tuple[str, str], tuple[Any, str]] = {
    ("adam", "skip_bad_steps"): (
        SkipBadStepsSpec | None,
        "SkipStepConfig | int | bool: an object with Levanter's fields covers all three (unset = False)",
    ),
    ("kron", "preconditioner_update_probability"): (float, "float | Callable: a callable is code, not data"),
    ("kron", "mu_dtype"): (str | None, "str | numpy.dtype | None: a dtype by name"),
    ("kron", "precond_dtype"): (str | None, "str | numpy.dtype | None: a dtype by name"),
    ("soap", "mu_dtype"): (str | None, "str | numpy.dtype | None: a dtype by name"),
    ("soap", "precond_dtype"): (str | None, "str | numpy.dtype | None: a dtype by name"),
    ("kron", "memory_save_mode"): (str | None, "str | None: the two modes Kron knows, as an enum"),
    ("kron", "precond_update_precision"): (str | None, "str | None: the precisions Kron knows, as an enum"),
    ("kron", "precond_grads_precision"): (str | None, "str | None: the precisions Kron knows, as an enum"),
}
"""Fields whose Levanter type admits Python objects a YAML file cannot hold: our type, and why."""
NESTED: dict[type[BaseModel], type] = {
    ClipUpdateNormSpec: ClipUpdateNormConfig,
    SkipBadStepsSpec: SkipStepConfig,
}


def canonical(annotation: Any) -> Any:
    """A type with typing's spellings removed: Optional[X] == X | None, Annotated[X, ...] == X, Literal of
    strings == str, and each nested spec model == the Levanter dataclass it mirrors."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return canonical(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return frozenset(canonical(arg) for arg in typing.get_args(annotation))
    if origin is list:
        return ("list", canonical(typing.get_args(annotation)[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return NESTED.get(annotation, annotation)
    return annotation


def levanter_fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {field.name: field for field in dataclasses.fields(cls)}


def levanter_default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def test_the_api_offers_exactly_the_optimizers_levanter_registers() -> None:
    assert set(OPTIMIZER_MODELS) == set(OptimizerConfig.get_known_choices())


def test_train_holds_every_shared_optimizer_field_but_the_deprecated_ones() -> None:
    on_train = {"learning_rate", "lr_schedule", *SHARED_FIELDS}
    assert on_train | DEPRECATED_BASE_FIELDS == BASE_FIELDS
    assert on_train <= set(TrainSpec.model_fields)


@pytest.mark.parametrize("name", sorted(OPTIMIZER_MODELS))
def test_each_optimizer_model_has_exactly_its_levanter_fields_types_and_defaults(name: str) -> None:
    levanter_class = OptimizerConfig.get_choice_class(name)
    hints = typing.get_type_hints(levanter_class)
    own = {key: field for key, field in levanter_fields(levanter_class).items() if key not in BASE_FIELDS}
    model = OPTIMIZER_MODELS[name]
    ours = {key: info for key, info in model.model_fields.items() if key != "type"}
    assert set(ours) == set(own) - {key for (opt, key) in NOT_OFFERED if opt == name}
    for key, info in ours.items():
        expected = NARROWED[(name, key)][0] if (name, key) in NARROWED else hints[key]
        assert canonical(info.annotation) == canonical(expected), f"{name}.{key}: type"
        assert levanter_value(info.default) == levanter_default(own[key]) or (
            (name, key) == ("adam", "skip_bad_steps") and info.default is None
        ), f"{name}.{key}: default"


@pytest.mark.parametrize("name", sorted(OPTIMIZER_MODELS))
def test_an_optimizer_given_only_its_type_builds_levanters_defaults(name: str) -> None:
    # TrainSpec alone: validation refuses settings the pinned Levanter cannot train, but the config is built.
    train = TrainSpec.model_validate({**TINY_SPEC["train"], "optimizer": {"type": name}})
    built = optimizer_config(train, seq_len=64)
    # Dataclass equality: every field, including the shared ones each optimizer defaults its own way.
    assert built == OptimizerConfig.get_choice_class(name)(learning_rate=train.learning_rate)


@pytest.mark.parametrize("spec_model", list(NESTED))
def test_nested_optimizer_settings_mirror_their_levanter_dataclass(spec_model: type[BaseModel]) -> None:
    levanter_class = NESTED[spec_model]
    hints = typing.get_type_hints(levanter_class)
    fields = levanter_fields(levanter_class)
    assert set(spec_model.model_fields) == set(fields)
    for key, info in spec_model.model_fields.items():
        assert canonical(info.annotation) == canonical(hints[key]), key
        assert info.default == levanter_default(fields[key]), key


def test_the_api_offers_exactly_the_lr_schedules_levanter_registers() -> None:
    union_names = {
        typing.get_args(model.model_fields["type"].annotation)[0]
        for model in typing.get_args(typing.get_args(LrScheduleSpec)[0])
    }
    assert union_names == set(LR_SCHEDULE_NAMES) == set(LrSchedule.get_known_choices())


@pytest.mark.parametrize("name", LR_SCHEDULE_NAMES)
def test_each_lr_schedule_builds_levanters_with_its_defaults(name: str, tiny_job: JobFactory) -> None:
    train = tiny_job(train={"lrScheduleConfig": {"type": name}}).spec.train
    built = lr_schedule(train, seq_len=64)
    levanter_class = LrSchedule.get_choice_class(name)
    required = {"batch_size": 4, "seq_length": 64} if name == "power" else {}
    assert built == levanter_class(**required)
    model = next(
        model
        for model in typing.get_args(typing.get_args(LrScheduleSpec)[0])
        if typing.get_args(model.model_fields["type"].annotation)[0] == name
    )
    # power's batch size and sequence length come from the job unless given.
    assert set(model.model_fields) - {"type"} == set(levanter_fields(levanter_class))
