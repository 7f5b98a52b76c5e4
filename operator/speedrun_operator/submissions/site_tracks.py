"""The site's tracks (``data/tracks.json`` in marin-community/speedrun): the all-runs board, one board per
target bpb, and the scaling board.

A target track holds the runs whose bpb is at most its target and above the next-lower target (0 for the
lowest). ``SITE_TRACKS`` is tracks.json as of commit 0c6fba030116f671ad75462e1118256324608b71 (2025-09-30,
still the file at the site's head 8c942e9 of 2026-01-08); ``--tracks FILE`` reads another.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

ALL_TRACK = "all"
SCALING_TRACK = "scaling"


@dataclass(frozen=True)
class Track:
    id: str
    name: str
    target_bpb: float | None = None


SITE_TRACKS = (
    Track("all", "All Runs"),
    Track("llama_30m", "llama 30m (1.53 BPB)", 1.5263875722885132),
    Track("llama_75m", "llama 75m (1.28 BPB)", 1.2788727283477783),
    Track("llama_300m", "llama 300m (1.10 BPB)", 1.103714942932129),
    Track("llama_1_4b", "llama 1.4B (~0.9 BPB)", 0.9557313919067384),
    Track("scaling", "Scaling"),
)


class InvalidTracks(ValueError):
    """A tracks file the boards cannot use; the message names the entry and the key."""


def parse_tracks(text: str, where: str) -> tuple[Track, ...]:
    """The tracks of a tracks.json document, in its order."""
    try:
        document: Any = json.loads(text)
    except ValueError as exc:
        raise InvalidTracks(f"{where}: not JSON ({exc})") from None
    if not isinstance(document, list):
        raise InvalidTracks(f"{where}: expected a list of tracks, found {type(document).__name__}")
    tracks = []
    for index, item in enumerate(document):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise InvalidTracks(f"{where}: [{index}].id: expected a string")
        target = item.get("target_bpb")
        valid_target = (
            isinstance(target, int | float) and not isinstance(target, bool) and math.isfinite(target)
        )
        if target is not None and not valid_target:
            raise InvalidTracks(f"{where}: [{index}].target_bpb: expected a number or null, found {target!r}")
        tracks.append(
            Track(item["id"], str(item.get("name", item["id"])), None if target is None else target)
        )
    return tuple(tracks)


def next_lower_target(track: Track, tracks: tuple[Track, ...]) -> float | None:
    """The target below ``track``'s among the target tracks (0 for the lowest); None for the other boards.

    The site orders target tracks by target, highest first, and takes the next one down."""
    if track.id in (ALL_TRACK, SCALING_TRACK) or not track.target_bpb:
        return None
    ordered = sorted(
        (t for t in tracks if t.id != ALL_TRACK and t.target_bpb),
        key=lambda t: t.target_bpb or 0.0,
        reverse=True,
    )
    index = next(i for i, t in enumerate(ordered) if t.id == track.id)
    return (ordered[index + 1].target_bpb or 0.0) if index < len(ordered) - 1 else 0.0
