"""Where a run's files go: results, config, step records and W&B under ``<output>/<job>/``, checkpoints
under ``<output>/checkpoints/<job>``, token caches under ``<output>/caches/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from speedrun_operator.storage import CONFIG_FILE, RESULTS_FILE, join

DEFAULT_LOCAL_OUTPUT = "speedrun-output"


@dataclass(frozen=True)
class RunPaths:
    output: str
    """The output prefix: a URL (gs://, s3://, file://) or a path."""
    job: str
    local_dir: Path
    """Scratch space on this machine (Levanter's log dir, the W&B run before it is copied out)."""

    @property
    def job_dir(self) -> str:
        return join(self.output, self.job)

    @property
    def results(self) -> str:
        return join(self.job_dir, RESULTS_FILE)

    @property
    def config(self) -> str:
        return join(self.job_dir, CONFIG_FILE)

    @property
    def steps(self) -> str:
        """One file of per-step records per attempt: what training_time is summed from."""
        return join(self.job_dir, "steps")

    @property
    def wandb(self) -> str:
        return join(self.job_dir, "wandb")

    @property
    def checkpoints(self) -> str:
        return join(self.output, "checkpoints", self.job)

    @property
    def caches(self) -> str:
        return join(self.output, "caches")

    @property
    def log_dir(self) -> Path:
        return self.local_dir / "logs"

    @property
    def wandb_local_dir(self) -> Path:
        return self.local_dir / "wandb-local"
