"""A checkpoint whose attempt was killed while writing it is set aside, and the run resumes from the one
before (Levanter's own discovery fails on its unreadable metadata.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from levanter.checkpoint import discover_latest_checkpoint

from speedrun_trainer.checkpointing import set_aside_unfinished

pytestmark = pytest.mark.unit


def test_a_checkpoint_killed_while_its_metadata_was_written_is_set_aside_for_the_one_before(
    tmp_path: Path,
) -> None:
    finished, killed = tmp_path / "step-10", tmp_path / "step-20"
    finished.mkdir()
    (finished / "metadata.json").write_text(json.dumps({"step": 10, "timestamp": "2026-12-01T10:00:00"}))
    killed.mkdir()
    (killed / "metadata.json").write_text("")

    assert set_aside_unfinished(str(tmp_path)) == [str(killed)]
    assert discover_latest_checkpoint(str(tmp_path)) == str(finished)
    assert (killed / "metadata.json.unfinished").exists()
    assert set_aside_unfinished(str(tmp_path)) == []
