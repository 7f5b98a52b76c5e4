"""Shared pieces of the SpeedrunJob API: the camelCase base model and bounded scalar types.

Every string and list carries an upper bound: the API server needs bounds to cost the CRD's CEL rules, and
pydantic enforces the same bounds, so a file valid here is valid there.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

GROUP = "speedrun.marin.community"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "SpeedrunJob"
PLURAL = "speedrunjobs"
SINGULAR = "speedrunjob"
SHORT_NAMES = ("srj",)

Name = Annotated[str, StringConstraints(min_length=1, max_length=253)]
"""A Kubernetes object name (DNS-1123 subdomain)."""
DNS_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DnsName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS_NAME_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=1024)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
LabelValue = Annotated[str, StringConstraints(max_length=63)]


class ApiModel(BaseModel):
    """camelCase on the wire (as Kubernetes objects are), snake_case in Python; unknown fields are errors."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
    )


class MutableApiModel(ApiModel):
    """As ApiModel, but assignable: for status, which the operator builds up step by step."""

    model_config = ConfigDict(frozen=False, validate_assignment=True)
