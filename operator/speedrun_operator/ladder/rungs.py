"""Each rung of a ladder as the SpeedrunJob it runs: its fields merged over ``spec.base``, validated as any
SpeedrunJob, named ``<ladder>-<rung>`` and writing under ``<output>/<ladder>/``.

The merge is defined here once (the operator, ``speedrun info``, ``validate`` and ``run`` all use it):
model, train and resources merge key by key, recursively; a mapping tagged with a different ``type`` (an
optimizer, an LR schedule of another kind) and every other field or list are replaced whole by the rung's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from speedrun_operator import contract
from speedrun_operator.api import FieldError, InvalidSpeedrunJob, ObjectMeta, SpeedrunJob
from speedrun_operator.api.ladder import LadderRung, SpeedrunLadder, SpeedrunLadderSpec
from speedrun_operator.api.validation import _from_pydantic, parse_spec
from speedrun_operator.builders.names import rung_job_name

DEEP_FIELDS = ("model", "train", "resources")
"""Spec fields a rung merges into key by key; every other field it gives replaces the base's."""


def merge(base: Mapping[str, Any], rung: Mapping[str, Any]) -> dict[str, Any]:
    """A SpeedrunJob spec (wire form) from the base's fields and a rung's overrides."""
    merged = dict(base)
    for key, value in rung.items():
        if key in DEEP_FIELDS and isinstance(merged.get(key), Mapping) and isinstance(value, Mapping):
            merged[key] = _deep(merged[key], value)
        else:
            merged[key] = value
    return merged


def _deep(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    if "type" in base and "type" in over and base["type"] != over["type"]:
        return dict(over)
    merged = dict(base)
    for key, value in over.items():
        inner = merged.get(key)
        merged[key] = (
            _deep(inner, value) if isinstance(inner, Mapping) and isinstance(value, Mapping) else value
        )
    return merged


def rung_spec(
    spec: SpeedrunLadderSpec, rung: LadderRung, ladder_name: str, default_output: str | None
) -> dict[str, Any]:
    """The rung's SpeedrunJob spec in wire form: author, description and suspend from the ladder, output
    nested under the ladder's folder (None when neither the ladder nor the default names a prefix)."""
    base = spec.base.model_dump(  # type: ignore[attr-defined]
        mode="json", exclude_none=True
    )
    over = rung.model_dump(mode="json", exclude_none=True, exclude={"name", "description"})
    merged = merge(base, over)
    merged["author"] = spec.author.model_dump(mode="json", exclude_none=True)
    merged["description"] = rung.description or spec.description
    if spec.suspend:
        merged["suspend"] = True
    prefix = contract.output_prefix(merged.get("output"), default_output)
    merged.pop("output", None)
    if prefix is not None:
        merged["output"] = contract.join(prefix, ladder_name)
    return merged


@dataclass(frozen=True)
class Rung:
    """One rung: its name in the ladder and the SpeedrunJob that runs it."""

    name: str
    job: SpeedrunJob


def parse_ladder(data: Any, default_output: str | None = None) -> tuple[SpeedrunLadder, list[Rung]]:
    """Validate a SpeedrunLadder manifest (its status is not read) and each rung's merged spec. Raises
    InvalidSpeedrunJob naming ``spec.rungs[i]...`` for a field a rung (or the base it inherits) gets wrong."""
    if isinstance(data, Mapping):
        data = {key: value for key, value in data.items() if key != "status"}
    try:
        ladder = SpeedrunLadder.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise InvalidSpeedrunJob(_from_pydantic(exc, SpeedrunLadder)) from None
    return ladder, rungs(ladder, default_output)


def rungs(ladder: SpeedrunLadder, default_output: str | None) -> list[Rung]:
    """Every rung's SpeedrunJob, in the ladder's order; raises InvalidSpeedrunJob as ``parse_ladder``."""
    found: list[Rung] = []
    errors: list[FieldError] = []
    for index, rung in enumerate(ladder.spec.rungs):
        prefix = f"spec.rungs[{index}]"
        wire = rung_spec(ladder.spec, rung, ladder.name, default_output)
        try:
            spec = parse_spec(wire, prefix=prefix)
        except InvalidSpeedrunJob as exc:
            errors.extend(
                FieldError(f"{error.path} ({rung.name})", error.message, error.value, error.has_value)
                for error in exc.errors
            )
            continue
        meta = ObjectMeta(name=rung_job_name(ladder.name, rung.name), namespace=ladder.metadata.namespace)
        found.append(Rung(rung.name, SpeedrunJob(metadata=meta, spec=spec)))
    if errors:
        raise InvalidSpeedrunJob(errors)
    return found
