"""CEL rules of the CRD's schema (``x-kubernetes-validations``): what the API server itself refuses.

Each rule mirrors a pydantic check of the same model, built from the same tables, so a cluster without the
validating webhook still refuses most bad files at `kubectl apply`. The CRD has no defaults: a rule reads an
optional field through :func:`or_default`.
"""

from __future__ import annotations

import json
from typing import Any


def literal(value: Any) -> str:
    """A CEL literal of a string, number, list or string-keyed map (JSON is CEL here)."""
    return json.dumps(value)


def regex(pattern: str) -> str:
    """A CEL string literal of an RE2 pattern (for ``matches``)."""
    return "'" + pattern.replace("\\", "\\\\").replace("'", "\\'") + "'"


def or_default(path: str, default: Any) -> str:
    return f"(has({path}) ? {path} : {literal(default)})"


def rule(expression: str, message: str, *, field: str | None = None) -> dict[str, str]:
    """One rule; ``field`` (``.batchSize``) is where the API server says the error is.

    Messages are fixed: the API server estimates a messageExpression that prints a number as costing far
    beyond its budget."""
    out = {"rule": expression, "message": message}
    if field is not None:
        out["fieldPath"] = field
    return out


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """A schema's rules, for ``json_schema_extra``."""
    return {"x-kubernetes-validations": list(rules)}
