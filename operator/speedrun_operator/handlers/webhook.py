"""Admission: the same pydantic validation at `kubectl apply` time, when the webhook is enabled."""

from __future__ import annotations

from typing import Any

import kopf

from speedrun_operator.api import GROUP, PLURAL, VERSION, InvalidSpeedrunJob
from speedrun_operator.api.validation import parse_spec

HANDLER_ID = "validate-speedrunjob"
"""kopf serves it at /<id>, where the chart's webhook configuration (templates/webhook.yaml) calls it."""


@kopf.on.validate(GROUP, VERSION, PLURAL, id=HANDLER_ID, operation="CREATE")
def validate_spec(spec: kopf.Spec, **_: Any) -> None:
    try:
        parse_spec(dict(spec))
    except InvalidSpeedrunJob as exc:
        raise kopf.AdmissionError("; ".join(str(error) for error in exc.errors), code=422) from None
