"""Imported runs of one ladder folder → one SpeedrunLadder: what every rung shares goes to ``spec.base``, the
rest stays on the rung, so that ``ladder.rungs.merge`` gives each rung back the spec it was imported as."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from speedrun_operator.api.base import API_VERSION
from speedrun_operator.api.ladder import LADDER_KIND, LADDER_ONLY_FIELDS, MAX_RUNGS, MIN_RUNGS
from speedrun_operator.ladder.rungs import DEEP_FIELDS
from speedrun_operator.runinfo import compute_run_info
from speedrun_operator.submissions.importer import SOURCE_ANNOTATION, Imported, job_name

TAGGED = ("optimizer", "lrScheduleConfig")
"""Tagged unions: a rung gives them whole (type included), and they share a base only with the same type."""


def as_ladder(name: str, runs: Sequence[tuple[str, Imported]], source: str) -> dict[str, Any] | None:
    """The SpeedrunLadder ``name`` of ``runs`` (rung name, imported run), smallest model first; None when the
    runs cannot be one ladder (fewer than three or more than sixteen, or by different authors)."""
    if not MIN_RUNGS <= len(runs) <= MAX_RUNGS:
        return None
    ordered = sorted(runs, key=lambda run: compute_run_info(run[1].job.spec).parameters)
    specs = [run.manifest()["spec"] for _, run in ordered]
    if any(spec["author"] != specs[0]["author"] for spec in specs):
        return None
    description = specs[0]["description"]
    shared = [{key: value for key, value in spec.items() if key not in LADDER_ONLY_FIELDS} for spec in specs]
    base = _common(shared, deep=False)
    rungs = []
    for (rung, _), spec, fields in zip(ordered, specs, shared, strict=True):
        entry: dict[str, Any] = {"name": job_name([rung])}
        if spec["description"] != description:
            entry["description"] = spec["description"]
        rungs.append(entry | _beyond(fields, base, deep=False))
    ladder = {
        "apiVersion": API_VERSION,
        "kind": LADDER_KIND,
        "metadata": {"name": name, "annotations": {SOURCE_ANNOTATION: source}},
        "spec": {"author": specs[0]["author"], "description": description, "base": base, "rungs": rungs},
    }
    return ladder


def _common(values: Sequence[Mapping[str, Any]], deep: bool) -> dict[str, Any]:
    """The keys every mapping holds with one value; in the deep fields, nested mappings key by key."""
    common: dict[str, Any] = {}
    for key in values[0]:
        if any(key not in value for value in values):
            continue
        found = [value[key] for value in values]
        nested = (deep or key in DEEP_FIELDS) and all(isinstance(item, Mapping) for item in found)
        if nested and key in TAGGED:
            if all(item == found[0] for item in found):
                common[key] = found[0]
        elif nested:
            inner = _common(found, deep=True)
            if inner:
                common[key] = inner
        elif all(item == found[0] for item in found):
            common[key] = found[0]
    return common


def _beyond(value: Mapping[str, Any], base: Mapping[str, Any], deep: bool) -> dict[str, Any]:
    """What ``value`` holds that ``base`` does not: the rung's own fields."""
    own: dict[str, Any] = {}
    for key, item in value.items():
        if key not in base:
            own[key] = item
        elif key not in TAGGED and (deep or key in DEEP_FIELDS) and isinstance(item, Mapping):
            inner = _beyond(item, base[key], deep=True)
            if inner:
                own[key] = inner
        elif item != base[key]:
            own[key] = item
    return own
