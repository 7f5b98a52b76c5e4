"""A run imported from its results trains again to the same result: the hello-world's own results, turned
back into a SpeedrunJob by ``speedrun import``, train with ``speedrun run`` to the same bits per byte
(deterministic seeds, the same CPU). Both runs share one output folder, so the corpus is tokenized once."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.submissions import speedrun
from fixtures.trainer import REPO, SpeedrunProcess, read_run_info
from speedrun_operator.manifests import load_job
from speedrun_trainer.step_log import read_history

pytestmark = pytest.mark.e2e

HELLO = REPO / "examples" / "hello-world-cpu.yaml"
RUN_SECONDS = 900
"""Each run takes about a minute and a half on an idle two-core machine; the limit is for a busy one."""


def test_the_imported_hello_world_trains_to_the_same_bpb_as_the_original(
    tmp_path: Path, speedrun_processes: Callable[..., SpeedrunProcess]
) -> None:
    shutil.copy(HELLO, tmp_path / "hello.yaml")
    first = speedrun_processes(["run", "hello.yaml"], cwd=tmp_path, log=tmp_path / "first.log")
    assert first.wait(timeout=RUN_SECONDS) == 0, first.output()[-4000:]
    original = tmp_path / "speedrun-output" / "hello-world-cpu"

    # Another name, so that the rerun neither resumes from the original's checkpoints nor overwrites it.
    imported = tmp_path / "rerun.yaml"
    ran = speedrun("import", str(original), "--name", "hello-rerun", "-o", str(imported))
    assert ran.returncode == 0, ran.stderr
    assert load_job(imported).spec == load_job(HELLO).spec

    second = speedrun_processes(["run", "rerun.yaml"], cwd=tmp_path, log=tmp_path / "second.log")
    assert second.wait(timeout=RUN_SECONDS) == 0, second.output()[-4000:]
    rerun = tmp_path / "speedrun-output" / "hello-rerun"

    before, after = (
        read_run_info(original / "speedrun_results.json"),
        read_run_info(rerun / "speedrun_results.json"),
    )
    assert after["eval_bpb"] == before["eval_bpb"]
    assert (after["model_size"], after["total_tokens"], after["model_flops"]) == (
        before["model_size"],
        before["total_tokens"],
        before["model_flops"],
    )
    losses = [record.loss for _, record in sorted(read_history(str(original / "steps")).steps.items())]
    again = [record.loss for _, record in sorted(read_history(str(rerun / "steps")).steps.items())]
    assert again == losses
