"""Where a run's files go: the contract's output layout, plus this machine's scratch space."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from speedrun_operator.contract import OutputLayout

DEFAULT_LOCAL_OUTPUT = "speedrun-output"


@dataclass(frozen=True)
class RunPaths(OutputLayout):
    local_dir: Path
    """Scratch space on this machine (Levanter's log dir, the W&B run before it is copied out)."""

    @property
    def log_dir(self) -> Path:
        return self.local_dir / "logs"

    @property
    def wandb_local_dir(self) -> Path:
        return self.local_dir / "wandb-local"
