"""Weights & Biases for a run: online with an API key, offline (kept in the output folder) without."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from levanter.tracker import NoopConfig, TrackerConfig
from levanter.tracker.wandb import WandbConfig

from speedrun_operator import contract, storage
from speedrun_operator.api import SpeedrunJob

logger = logging.getLogger(__name__)

API_KEY_ENV = "WANDB_API_KEY"


def wandb_mode(job: SpeedrunJob) -> str:
    forced = job.spec.tracking.mode
    if forced is not None:
        return forced
    return "online" if os.environ.get(API_KEY_ENV) else "offline"


def wandb_config(job: SpeedrunJob, run_id: str, mode: str) -> TrackerConfig:
    if mode == "disabled":
        return NoopConfig()
    tracking = job.spec.tracking
    return WandbConfig(
        entity=tracking.entity,
        project=tracking.project,
        name=job.name,
        tags=["speedrun", *tracking.tags],
        id=run_id,
        mode=mode,
        # The code is in the image; W&B's code snapshot would only read the working directory.
        save_code=False,
    )


def current_run_link() -> str | None:
    """The live W&B run's URL when it is online; None offline or when no run is active."""
    import wandb

    run = wandb.run
    if run is None or run.offline:
        return None
    url: str | None = run.url
    return url


def keep_offline_runs(local_wandb_dir: Path, destination: str, job: str) -> str | None:
    """Copy the offline run folders W&B wrote under ``local_wandb_dir`` into the output; return where."""
    runs = sorted(local_wandb_dir.glob("wandb/offline-run-*"))
    for run in runs:
        storage.upload_dir(str(run), contract.join(destination, run.name))
    if runs:
        logger.info(
            "[%s] kept %d offline W&B run folder(s) in %s (`wandb sync` uploads them)",
            job,
            len(runs),
            destination,
        )
        return destination
    return None


def safe_run_id(name: str, digest: str) -> str:
    """A W&B-valid run id (letters, digits, - and _; at most 64 characters) that is stable across attempts."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '-', name)[:50]}-{digest[:8]}"
