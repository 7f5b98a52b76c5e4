"""Kubernetes Events about SpeedrunJobs, posted through kopf."""

from __future__ import annotations

from typing import Any, cast

import kopf
from kopf._cogs.structs.bodies import RawBody


def post(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    kopf.event(kopf.Body(cast(RawBody, body)), type=type_, reason=reason, message=message[:1024])
