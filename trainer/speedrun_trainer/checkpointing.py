"""Levanter's checkpointer, with the attempt's step records made durable before each checkpoint is saved.

A restarted attempt resumes from the latest checkpoint and keeps the earlier attempt's records of the steps
up to it. Records are otherwise written every few seconds, so a pod lost just after a checkpoint would take
the last steps' records with it and training_time would miss those steps. Levanter saves from a hook that
runs before the one logging the step's duration, so the checkpointed step itself is recorded here, from its
StepInfo.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import posixpath
import time
from collections.abc import Callable
from typing import Any

import fsspec
from levanter.checkpoint import Checkpointer as LevanterCheckpointer
from levanter.checkpoint import CheckpointerConfig, CheckpointInterval

from speedrun_trainer.step_log import StepRecord
from speedrun_trainer.step_tracker import sink_named

logger = logging.getLogger(__name__)


def set_aside_unfinished(base_path: str) -> list[str]:
    """Rename the metadata.json that an attempt killed while writing it left unreadable, so the checkpoint it
    would have finished is not taken for one (Levanter's discovery fails on it) and the run resumes from the
    one before; return the checkpoints set aside."""
    fs, root = fsspec.core.url_to_fs(base_path)
    unfinished = []
    for metadata in fs.glob(posixpath.join(root, "*", "metadata.json")):
        try:
            json.loads(fs.cat_file(metadata))
        except (ValueError, UnicodeDecodeError):
            fs.mv(metadata, metadata + ".unfinished")
            unfinished.append(posixpath.dirname(metadata))
    for checkpoint in unfinished:
        logger.warning(
            "checkpoint %s was not finished (its attempt was killed); resuming from an earlier one",
            checkpoint,
        )
    return unfinished


class RecordingCheckpointer(LevanterCheckpointer):  # type: ignore[misc]  # Levanter is untyped
    def __init__(self, *args: Any, sink: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sink = sink

    def save_checkpoint(
        self,
        info: Any,
        destination: str,
        commit_callback: Callable[[], None] | None = None,
        *,
        is_temporary: bool = False,
    ) -> None:
        record = StepRecord(
            step=int(info.step),
            duration=float(info.step_duration),
            loss=float(info.loss),
            tokens_per_second=None,
            finished_at=time.time(),
        )
        sink_named(self._sink).before_checkpoint(record)
        super().save_checkpoint(info, destination, commit_callback, is_temporary=is_temporary)


@dataclasses.dataclass
class RecordingCheckpointerConfig(CheckpointerConfig):  # type: ignore[misc]
    sink: str = ""
    """The name the run's step sink was registered under with ``registered_sink``."""

    def create(self, run_id: str) -> RecordingCheckpointer:
        set_aside_unfinished(self.expanded_path(run_id))
        return RecordingCheckpointer(
            base_path=self.expanded_path(run_id),
            save_interval=self.save_interval,
            step_policies=[CheckpointInterval(**keep) for keep in self.keep],
            delete_old_temp_checkpoints=self.delete_old_temp_checkpoints,
            sink=self.sink,
        )
