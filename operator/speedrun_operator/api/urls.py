"""URL checks for data and output locations (anything fsspec opens, or a plain path)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field

from speedrun_operator.api.base import Url
from speedrun_operator.api.cel import regex, rule, validations

BUCKET_SCHEMES = frozenset({"gs", "gcs", "s3", "az", "abfs", "abfss"})
WRITABLE_SCHEMES = BUCKET_SCHEMES | {"file", "memory"}
READABLE_SCHEMES = WRITABLE_SCHEMES | {"hf", "http", "https"}
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_BUCKET = r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]"


def check_url(value: str, *, writable: bool) -> str:
    """Return ``value`` if it is a usable location; raise ValueError saying what is wrong otherwise."""
    if value != value.strip() or any(ch.isspace() for ch in value):
        raise ValueError("must not contain whitespace")
    match = _SCHEME.match(value)
    if match is None:
        return value  # a plain path
    scheme = match.group(1).lower()
    allowed = WRITABLE_SCHEMES if writable else READABLE_SCHEMES
    if scheme not in allowed:
        raise ValueError(f"scheme {scheme!r} is not supported here; use one of {', '.join(sorted(allowed))}")
    if scheme in {"file", "memory"}:
        return value
    if not value.startswith(f"{match.group(1)}://"):
        raise ValueError(f"malformed URL: expected {scheme}://<bucket>/<path>")
    parts = urlsplit(value)
    if not parts.netloc:
        raise ValueError(f"malformed URL: no bucket or host after {scheme}://")
    if scheme in BUCKET_SCHEMES and not re.fullmatch(_BUCKET, parts.netloc):
        raise ValueError(f"malformed bucket name {parts.netloc!r}")
    return value


def url_rules(*, writable: bool) -> list[dict[str, str]]:
    """check_url as CEL rules on the string, for the CRD."""
    allowed = sorted(WRITABLE_SCHEMES if writable else READABLE_SCHEMES)

    def matches(pattern: str) -> str:
        return f"self.matches({regex(pattern)})"

    def scheme_in(schemes: Iterable[str]) -> str:
        return matches("^(?i)(" + "|".join(sorted(schemes)) + "):")

    return [
        rule("!" + matches(r"\s"), "must not contain whitespace"),
        rule(
            f"!{matches(_SCHEME.pattern)} || {scheme_in(allowed)}",
            f"scheme is not supported here; use one of {', '.join(allowed)}",
        ),
        rule(
            f"!{scheme_in(set(allowed) - {'file', 'memory'})} || {matches('^[^:]+://[^/]')}",
            "malformed URL: expected <scheme>://<bucket or host>/<path>",
        ),
        rule(
            f"!{scheme_in(BUCKET_SCHEMES)} || {matches('^[^:]+://' + _BUCKET + '(/|$)')}",
            "malformed bucket name after <scheme>://",
        ),
    ]


ReadableUrl = Annotated[Url, Field(json_schema_extra=validations(*url_rules(writable=False)))]
"""A location data is read from (check_url with writable=False; these fields validate with it)."""
WritableUrl = Annotated[Url, Field(json_schema_extra=validations(*url_rules(writable=True)))]
"""A location results are written to (check_url with writable=True)."""
