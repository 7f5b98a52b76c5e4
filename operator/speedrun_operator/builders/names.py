"""Deterministic names for the objects a SpeedrunJob owns, so a restarted operator finds what exists."""

from __future__ import annotations

import hashlib
import re

RAYJOB_NAME_LIMIT = 47
"""KubeRay appends suffixes to a RayJob's name for its RayCluster and services; it refuses longer names."""

_PREFIX = "srj-"


def rayjob_name(job_name: str) -> str:
    """``srj-<name>``, a DNS-1035 label of at most 47 characters; long names keep a hash of the whole."""
    sanitized = re.sub(r"[^a-z0-9-]", "-", job_name.lower())
    candidate = _PREFIX + sanitized
    if len(candidate) <= RAYJOB_NAME_LIMIT:
        return candidate
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:8]
    keep = RAYJOB_NAME_LIMIT - len(_PREFIX) - len(digest) - 1
    return f"{_PREFIX}{sanitized[:keep].rstrip('-')}-{digest}"
