"""A custom model's code on this machine, for ``speedrun run``, ``train`` and ``info``: the .py files beside
the job's file stand for its ConfigMap, and its counts come from importing it in a trainer process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import click

from speedrun_operator import contract
from speedrun_operator.api import SpeedrunJob
from speedrun_operator.cli.errors import EXIT_INVALID
from speedrun_operator.runinfo import ModelCounts

COUNT_MODULE = "speedrun_trainer.count_model_code"


def use_local_code(file: Path, job: SpeedrunJob) -> None:
    """A job whose code is a ConfigMap reads it, here, from the folder of its file (what kustomize's
    configMapGenerator packs), unless SPEEDRUN_CODE_DIR already says where it is."""
    code = job.spec.model.code
    if code is not None and code.config_map is not None and not os.environ.get(contract.CODE_DIR_ENV):
        os.environ[contract.CODE_DIR_ENV] = str(file.resolve().parent)


@dataclass(frozen=True)
class CodeCounts:
    counts: ModelCounts
    digest: str
    files: list[str]


def code_counts(file: Path, job: SpeedrunJob) -> CodeCounts:
    """Import the job's code in a trainer process (JAX and Levanter stay out of this one) and count its
    model; a broken model or a missing trainer is one line and exit code 2."""
    use_local_code(file, job)
    try:
        done = subprocess.run(
            [sys.executable, "-m", COUNT_MODULE, str(file)], capture_output=True, text=True, check=False
        )
    except OSError as exc:
        _fail(f"{file}: cannot start {sys.executable} ({exc.strerror})")
    if done.returncode == 0:
        found = json.loads(done.stdout.strip().splitlines()[-1])
        counts = ModelCounts(parameters=found["parameters"], flops_per_token=found["flops_per_token"])
        return CodeCounts(counts, found["digest"], found["files"])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit code {done.returncode}"
    if "No module named" in last and ("jax" in last or "levanter" in last or "speedrun_trainer" in last):
        _fail(f"{file}: counting a custom model imports its code, which needs the trainer ({last})")
    _fail(f"{file}: {last.removeprefix('error: ')}")


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    raise SystemExit(EXIT_INVALID)
