"""Generate the SpeedrunJob and SpeedrunLadder CRDs from the pydantic models: the models are the one schema.

``speedrun crd --write`` writes ``crds/speedrunjob.yaml``, ``crds/speedrunladder.yaml`` and the chart's
copies; a unit test fails when any differs from what this module generates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from speedrun_operator.api import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION, SpeedrunJobSpec
from speedrun_operator.api.ladder import (
    LADDER_KIND,
    LADDER_PLURAL,
    LADDER_SHORT_NAMES,
    LADDER_SINGULAR,
    SpeedrunLadderSpec,
    SpeedrunLadderStatus,
)
from speedrun_operator.api.status import SpeedrunJobStatus

HEADER = (
    "# Generated from the pydantic models in operator/speedrun_operator/api by `speedrun crd --write`.\n"
    "# Do not edit by hand: change the models and regenerate.\n"
)
CRD_FILE = Path("crds/speedrunjob.yaml")
CHART_CRD_FILE = Path("helm/speedrun-operator/crds/speedrunjob.yaml")
LADDER_CRD_FILE = Path("crds/speedrunladder.yaml")
CHART_LADDER_CRD_FILE = Path("helm/speedrun-operator/crds/speedrunladder.yaml")

# Formats the API server understands; pydantic emits others (uri, ...) that it would only warn about.
_KEEP_FORMATS = {"date-time", "int32", "int64", "float", "double", "byte"}
_DROP_KEYS = {"title", "examples", "additionalProperties", "default", "propertyNames"}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Accelerator", "type": "string", "jsonPath": ".status.accelerator"},
    {"name": "Params", "type": "string", "jsonPath": ".status.runInfo.parametersDisplay"},
    {"name": "Progress", "type": "string", "jsonPath": ".status.progress.display"},
    {
        "name": "BPB",
        "type": "string",
        "jsonPath": ".status.results.evalBpbDisplay",
        "description": "Eval bits per byte",
    },
    {"name": "Reason", "type": "string", "jsonPath": ".status.reason", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

LADDER_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Rungs", "type": "string", "jsonPath": ".status.rungsDone", "description": "Rungs done/total"},
    {
        "name": "Projected",
        "type": "string",
        "jsonPath": ".status.projectedBpb",
        "description": "The site fit's bpb at 1e22 FLOPs",
    },
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Reason", "type": "string", "jsonPath": ".status.reason", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

IMMUTABLE_MESSAGE = (
    "spec cannot change once the run has started (status.startTime is set), except spec.suspend; "
    "delete and re-create the SpeedrunJob to run a different config"
)


def build_crd() -> dict[str, Any]:
    spec_schema = openapi_schema(SpeedrunJobSpec)
    status_schema = openapi_schema(SpeedrunJobStatus)
    status_schema.pop("required", None)
    root: dict[str, Any] = {
        "type": "object",
        "description": "A Marin language-model training speedrun, run by KubeRay on GPU or TPU node pools.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
        "x-kubernetes-validations": [{"rule": immutability_rule(), "message": IMMUTABLE_MESSAGE}],
    }
    return _definition(KIND, PLURAL, SINGULAR, SHORT_NAMES, PRINTER_COLUMNS, root)


def build_ladder_crd() -> dict[str, Any]:
    status_schema = openapi_schema(SpeedrunLadderStatus)
    status_schema.pop("required", None)
    spec_schema = openapi_schema(SpeedrunLadderSpec)
    # base and rungs are partial SpeedrunJob specs: each rung's whole spec is checked (CEL and the webhook)
    # as the SpeedrunJob the operator creates. The rules of their URL strings, sixteen rungs over, would
    # cost the ladder's schema more than the API server's CEL budget.
    for partial in (spec_schema["properties"]["base"], spec_schema["properties"]["rungs"]["items"]):
        _drop_string_rules(partial)
    root: dict[str, Any] = {
        "type": "object",
        "description": "A scaling-track submission: one SpeedrunJob per model size, and the power law "
        "fitted to their results.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    return _definition(
        LADDER_KIND, LADDER_PLURAL, LADDER_SINGULAR, LADDER_SHORT_NAMES, LADDER_PRINTER_COLUMNS, root
    )


def _drop_string_rules(schema: Any) -> None:
    if isinstance(schema, dict):
        if schema.get("type") == "string":
            schema.pop("x-kubernetes-validations", None)
        for value in schema.values():
            _drop_string_rules(value)
    elif isinstance(schema, list):
        for item in schema:
            _drop_string_rules(item)


def _definition(
    kind: str,
    plural: str,
    singular: str,
    short_names: tuple[str, ...],
    columns: list[dict[str, Any]],
    root: dict[str, Any],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": list(short_names),
                "categories": ["speedrun"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def immutability_rule() -> str:
    """CEL: once status.startTime is set, every spec field but suspend equals its old value."""
    clauses = []
    for name, field in SpeedrunJobSpec.model_fields.items():
        alias = field.alias or name
        if alias == "suspend":
            continue
        new, old = f"self.spec.{alias}", f"oldSelf.spec.{alias}"
        clauses.append(f"(has({new}) == has({old}) && (!has({new}) || {new} == {old}))")
    started = "has(oldSelf.status) && has(oldSelf.status.startTime)"
    return f"!({started}) || (" + " && ".join(clauses) + ")"


def openapi_schema(model: type[Any]) -> dict[str, Any]:
    """A structural OpenAPI v3 schema (what a CRD accepts) from a pydantic model's JSON schema."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.pop("$defs", {})
    return _convert(schema, definitions)


def _convert(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = definitions[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, definitions)
    if "oneOf" in node and "discriminator" in node:
        return _tagged_union(node, definitions)
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unions other than Optional[X] cannot be a structural schema: {node}")
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        return _convert({**options[0], **outer}, definitions)

    out: dict[str, Any] = {}
    description = node.get("description", "")
    if "default" in node and node["default"] not in (None, [], {}):
        default = json.dumps(node["default"])
        description = f"{description} Default: {default}." if "Default:" not in description else description
    if description:
        out["description"] = description.strip()
    if "const" in node:
        out["type"], out["enum"] = "string", [node["const"]]
    for key, value in node.items():
        if key in _DROP_KEYS or key in {"description", "const", "$ref"}:
            continue
        if key == "format":
            if value in _KEEP_FORMATS:
                out[key] = value
        elif key == "properties":
            out[key] = {name: _convert(prop, definitions) for name, prop in value.items()}
        elif key == "items":
            out[key] = _convert(value, definitions)
        elif key in {"exclusiveMinimum", "exclusiveMaximum"}:
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound], out[key] = value, True
        else:
            out[key] = value
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
        values = _convert(node["additionalProperties"], definitions)
        # {} (any value) is not structural; x-kubernetes-preserve-unknown-fields says it instead.
        if values:
            out["additionalProperties"] = values
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def _tagged_union(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """A pydantic discriminated union as one structural object.

    A structural schema cannot say "one of these objects" (oneOf may not declare types or new properties), so
    the variants become one object holding every variant's properties, the tag an enum of the variants'
    names, and one CEL rule per property that some variant lacks, naming the types that have it. pydantic
    still validates each variant exactly; the rules give the same refusal at kubectl apply time.
    """
    tag = node["discriminator"]["propertyName"]
    variants: dict[str, dict[str, Any]] = {}
    for option in node["oneOf"]:
        target = definitions[option["$ref"].rsplit("/", 1)[-1]]
        variants[target["properties"][tag]["const"]] = target
    names = list(variants)
    owners: dict[str, list[str]] = {}
    for name, variant in variants.items():
        for prop in variant["properties"]:
            if prop != tag:
                owners.setdefault(prop, []).append(name)
    properties: dict[str, Any] = {
        tag: {
            "description": "One of: "
            + "; ".join(
                " ".join(variant.get("description", name).split()).rstrip(".")
                for name, variant in variants.items()
            )
            + ".",
            "type": "string",
            "enum": names,
        }
    }
    for prop, havers in owners.items():
        properties[prop] = _merged_property(prop, {name: variants[name] for name in havers}, definitions)
    rules = [
        {
            "rule": f"!has(self.{prop}) || self.{tag} in {json.dumps(havers)}",
            "message": f"{prop} belongs to {tag} {', '.join(havers)} only; remove it or change {tag}",
            "fieldPath": f".{prop}",
        }
        for prop, havers in owners.items()
        if len(havers) < len(names)
    ]
    for name, variant in variants.items():
        for prop in variant.get("required", []):
            if prop != tag:
                rules.append(
                    {
                        "rule": f"self.{tag} != {json.dumps(name)} || has(self.{prop})",
                        "message": f"{name} needs {prop}",
                        "fieldPath": f".{prop}",
                    }
                )
    out: dict[str, Any] = {"type": "object", "required": [tag], "properties": properties}
    if node.get("description"):
        out = {"description": node["description"], **out}
    if rules:
        out["x-kubernetes-validations"] = rules
    return out


def _merged_property(
    prop: str, variants: dict[str, dict[str, Any]], definitions: dict[str, Any]
) -> dict[str, Any]:
    """One property shared by several variants: the same schema in each, with per-variant defaults."""
    shapes: dict[str, dict[str, Any]] = {}
    for name, variant in variants.items():
        raw = {k: v for k, v in variant["properties"][prop].items() if k != "default"}
        shapes[name] = _convert(raw, definitions)
    descriptions = {name: shape.pop("description", "") for name, shape in shapes.items()}
    first = next(iter(shapes.values()))
    differing = [name for name, shape in shapes.items() if shape != first]
    if differing:
        raise ValueError(f"{prop} has different schemas in {', '.join(differing)} than in the others")
    texts: dict[str, list[str]] = {}
    for name, text in descriptions.items():
        texts.setdefault(text, []).append(name)
    description = (
        next(iter(texts))
        if len(texts) == 1
        else " ".join(f"{', '.join(havers)}: {text}" for text, havers in texts.items())
    )
    defaults: dict[str, list[str]] = {}
    for name, variant in variants.items():
        default = variant["properties"][prop].get("default")
        if default not in (None, [], {}):
            defaults.setdefault(json.dumps(default), []).append(name)
    if len(defaults) == 1 and len(next(iter(defaults.values()))) == len(variants):
        description += f" Default: {next(iter(defaults))}."
    elif defaults:
        description += (
            " Default: "
            + "; ".join(f"{value} ({', '.join(havers)})" for value, havers in defaults.items())
            + "."
        )
    return {"description": description.strip(), **first}


def render_crd() -> str:
    return HEADER + yaml.safe_dump(build_crd(), sort_keys=False, width=120)


def render_ladder_crd() -> str:
    return HEADER + yaml.safe_dump(build_ladder_crd(), sort_keys=False, width=120)


def _files() -> list[tuple[Path, str]]:
    job, ladder = render_crd(), render_ladder_crd()
    return [
        (CRD_FILE, job),
        (CHART_CRD_FILE, job),
        (LADDER_CRD_FILE, ladder),
        (CHART_LADDER_CRD_FILE, ladder),
    ]


def write_crd(root: Path) -> list[Path]:
    written = []
    for relative, text in _files():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    return written


def drifted_files(root: Path) -> list[Path]:
    return [
        root / relative
        for relative, text in _files()
        if not (root / relative).exists() or (root / relative).read_text() != text
    ]
