"""Turn any input into a SpeedrunJob or a list of errors a person can act on: field, value, fix.

Schema errors come from pydantic; the checks here span several fields (batch vs. chips) and so live
outside the models, where they can name the exact field that has to change.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from speedrun_operator.api.base import DNS_NAME_PATTERN
from speedrun_operator.api.job import SpeedrunJob
from speedrun_operator.api.optimizers import (
    LR_SCHEDULE_MODELS,
    OPTIMIZER_MODELS,
    PowerScheduleSpec,
    training_blocker,
)
from speedrun_operator.api.spec import SpeedrunJobSpec
from speedrun_operator.api.train import TrainSpec

_MAX_VALUE_REPR = 80
_TAGGED_UNIONS: dict[str, tuple[str, dict[str, type[BaseModel]]]] = {
    "optimizer": ("optimizer", dict(OPTIMIZER_MODELS)),
    "lrScheduleConfig": ("LR schedule", dict(LR_SCHEDULE_MODELS)),
}
"""Fields holding a union tagged by ``type``: what to call them, and their models by tag."""
_PATTERN_HINTS = {
    DNS_NAME_PATTERN: "must be a DNS-1123 name: lowercase letters, digits, '-' and '.', "
    "starting and ending with a letter or digit",
}


@dataclass(frozen=True)
class FieldError:
    """One problem: where (a dotted path such as spec.train.batchSize), the value found, and what to do."""

    path: str
    message: str
    value: Any = None
    has_value: bool = True

    def __str__(self) -> str:
        shown = f" (got {_short_repr(self.value)})" if self.has_value else ""
        return f"{self.path}: {self.message}{shown}"


class InvalidSpeedrunJob(ValueError):
    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(error) for error in self.errors))


def parse_job(data: Any) -> SpeedrunJob:
    """Validate a SpeedrunJob manifest (a dict, as from YAML). Raises InvalidSpeedrunJob."""
    try:
        job = SpeedrunJob.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise InvalidSpeedrunJob(_from_pydantic(exc, SpeedrunJob)) from None
    errors = list(cross_field_errors(job.spec, prefix="spec"))
    if errors:
        raise InvalidSpeedrunJob(errors)
    return job


def parse_spec(data: Any, *, prefix: str = "spec") -> SpeedrunJobSpec:
    """Validate just a spec (the operator gets spec and metadata separately)."""
    try:
        spec = SpeedrunJobSpec.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise InvalidSpeedrunJob(_from_pydantic(exc, SpeedrunJobSpec, prefix=prefix)) from None
    errors = list(cross_field_errors(spec, prefix=prefix))
    if errors:
        raise InvalidSpeedrunJob(errors)
    return spec


def cross_field_errors(spec: SpeedrunJobSpec, *, prefix: str) -> Iterable[FieldError]:
    chips = spec.resources.num_chips
    if chips > 1:
        where = f"{spec.resources.describe()} ({chips} chips)"
        if spec.train.batch_size is not None and spec.train.batch_size % chips:
            yield FieldError(
                f"{prefix}.train.batchSize",
                f"must be divisible by the number of chips of {where}; "
                f"try {_round_up(spec.train.batch_size, chips)}",
                spec.train.batch_size,
            )
        for index, (_, size) in enumerate(spec.train.batch_sizes() if spec.train.batch_schedule else []):
            if size % chips:
                yield FieldError(
                    f"{prefix}.train.batchSchedule[{index}].batchSize",
                    f"must be divisible by the number of chips of {where}; try {_round_up(size, chips)}",
                    size,
                )
    train = spec.train
    for name in train.adamw_scalars_beside_optimizer():
        alias = TrainSpec.model_fields[name].alias or name
        yield FieldError(
            f"{prefix}.train.{alias}",
            f"is the default AdamW's; with train.optimizer ({train.optimizer_type}) set, "
            f"give {alias} inside train.optimizer",
            getattr(train, name),
        )
    blocker = training_blocker(train.optimizer) if train.optimizer is not None else None
    if blocker is not None:
        field, why = blocker
        yield FieldError(f"{prefix}.train.optimizer.{field}", why, has_value=False)
    if train.schedule_name == "power" and train.batch_schedule is not None:
        config = train.lr_schedule_config
        if not isinstance(config, PowerScheduleSpec) or config.batch_size is None:
            yield FieldError(
                f"{prefix}.train.lrScheduleConfig.batchSize",
                "the power LR schedule needs one batch size and train has a batchSchedule; "
                "set lrScheduleConfig: {type: power, batchSize: N}",
                has_value=False,
            )
    if spec.model.is_custom:
        if spec.train.seq_len is None:
            yield FieldError(
                f"{prefix}.train.seqLen",
                "is required for a model of family custom (the tokens per sequence; its config's too)",
                has_value=False,
            )
        return
    shape = spec.model.resolve()
    if spec.train.seq_len is not None and spec.train.seq_len > shape.seq_len:
        yield FieldError(
            f"{prefix}.train.seqLen",
            f"must not exceed the model's seqLen {shape.seq_len}; raise model.seqLen or lower train.seqLen",
            spec.train.seq_len,
        )


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _from_pydantic(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> list[FieldError]:
    errors = []
    for error in exc.errors(include_url=False):
        loc = [part for part in error["loc"] if not _is_internal_loc(part)]
        variant = _drop_variant_tag(loc)
        path = _join_path([prefix, *loc] if prefix else loc) or (prefix or "(top level)")
        message = error["msg"].removeprefix("Value error, ")
        if (
            error["type"] in {"union_tag_invalid", "union_tag_not_found"}
            and loc
            and loc[-1] in _TAGGED_UNIONS
        ):
            kind, models = _TAGGED_UNIONS[str(loc[-1])]
            tag = (error.get("ctx") or {}).get("tag")
            found = f"unknown {kind} type {tag!r}" if tag is not None else f"the {kind} needs a type"
            errors.append(FieldError(f"{path}.type", f"{found}; known: {', '.join(models)}", has_value=False))
            continue
        if error["type"] == "extra_forbidden" and variant is not None and len(loc) == variant[0] + 1:
            message = _variant_field_hint(*variant[1:], str(loc[-1]))
        elif error["type"] == "extra_forbidden":
            message = "unknown field" + _allowed_fields_hint(model, loc[:-1], str(loc[-1]))
        elif error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] == "string_pattern_mismatch":
            pattern = str((error.get("ctx") or {}).get("pattern", ""))
            message = _PATTERN_HINTS.get(pattern, message)
        value = error.get("input")
        # A rule spanning a whole object names that object; echoing the object back only adds noise.
        shown = error["type"] != "missing" and not isinstance(value, dict)
        errors.append(FieldError(path, message, value, has_value=shown))
    return errors


def _drop_variant_tag(loc: list[Any]) -> tuple[int, str, str] | None:
    """pydantic names a tagged union's variant (its tag) in the location; a user wrote no such field. Drop
    it and return (index of the variant's fields in loc, the union's field name, the tag)."""
    for index in range(1, len(loc)):
        union = loc[index - 1]
        if union in _TAGGED_UNIONS and loc[index] in _TAGGED_UNIONS[union][1]:
            tag = str(loc.pop(index))
            return index, str(union), tag
    return None


def _variant_field_hint(union: str, tag: str, unknown: str) -> str:
    kind, models = _TAGGED_UNIONS[union]
    own = sorted(field.alias or name for name, field in models[tag].model_fields.items() if name != "type")
    close = difflib.get_close_matches(unknown, own, n=1, cutoff=0.75)
    if close:
        return f"not a field of {kind} type {tag}; did you mean {close[0]}?"
    owners = [
        name
        for name, model in models.items()
        if any((field.alias or key) == unknown for key, field in model.model_fields.items())
    ]
    if owners:
        return f"not a field of {kind} type {tag}; {unknown} belongs to {', '.join(owners)}"
    return f"not a field of {kind} type {tag}; its fields: {', '.join(own) or '(none)'}"


def _is_internal_loc(part: object) -> bool:
    # pydantic adds tagged-union and function names to locations; they are not fields a user wrote.
    return isinstance(part, str) and (part.startswith("function-") or part in {"dict[str,list[str]]"})


def _join_path(parts: Sequence[object]) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part:
            path += ("." if path else "") + str(part)
    return path


def _allowed_fields_hint(model: type[BaseModel], loc: Sequence[object], unknown: str) -> str:
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or isinstance(part, int):
            continue
        current = _field_model(current, str(part))
    if current is None:
        return ""
    names = sorted(field.alias or name for name, field in current.model_fields.items())
    by_key = {name.lower(): name for name in names}
    close = difflib.get_close_matches(unknown.replace("_", "").lower(), list(by_key), n=1, cutoff=0.75)
    if close:
        return f"; did you mean {by_key[close[0]]}?"
    return f"; allowed here: {', '.join(names)}"


def _field_model(model: type[BaseModel], alias: str) -> type[BaseModel] | None:
    for name, field in model.model_fields.items():
        if (field.alias or name) == alias:
            for candidate in _model_types(field.annotation):
                return candidate
    return None


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        found.extend(_model_types(arg))
    return found


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_REPR else text[: _MAX_VALUE_REPR - 3] + "..."
