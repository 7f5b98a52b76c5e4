"""Deterministic names for the objects a SpeedrunJob or a SpeedrunLadder owns, so a restarted operator finds
what exists."""

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


RUNG_JOB_NAME_LIMIT = 63
"""A rung's SpeedrunJob name is its results folder and a label value: a DNS-1123 label, at most 63."""


def rung_job_name(ladder_name: str, rung_name: str) -> str:
    """``<ladder>-<rung>``, the SpeedrunJob of one rung; a long ladder name is cut and keeps a hash of the
    whole, so the name stays unique and still ends with the rung's."""
    candidate = f"{ladder_name}-{rung_name}"
    if len(candidate) <= RUNG_JOB_NAME_LIMIT and "." not in candidate:
        return candidate
    digest = hashlib.sha256(candidate.encode()).hexdigest()[:8]
    keep = RUNG_JOB_NAME_LIMIT - len(rung_name) - len(digest) - 2
    head = re.sub(r"[^a-z0-9-]", "-", ladder_name)[:keep].rstrip("-")
    return f"{head}-{digest}-{rung_name}"
