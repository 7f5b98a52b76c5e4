"""What ``speedrun train`` costs over plain Levanter: per-step time and time to first step.

Trains the same tiny config twice, each in a fresh process with its own output folder (so each tokenizes
its own cache and starts its own Ray):

- plain: ``levanter.main.train_lm.main`` on the TrainLmConfig ``speedrun train`` builds, with only Levanter's
  stock JSON-logger tracker (to read the step durations back);
- speedrun: ``speedrun train FILE``, as the trainer image runs it (step capture, W&B offline, results).

Per-step time is the median of Levanter's ``throughput/duration`` over all steps but the first (compile).
Time to first step runs from process launch to the end of step 0. Target: per-step ratio <= 1.05.

    .venv/bin/python bench/trainer_overhead.py [--steps 300] [--repeats 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from speedrun_operator.api import SpeedrunJob
from speedrun_operator.manifests import load_job

REPO = Path(__file__).resolve().parents[1]
HELLO = REPO / "examples" / "hello-world-cpu.yaml"
SPEEDRUN = str(Path(sys.executable).with_name("speedrun"))
STEP_LOGGER = "bench.steps"


@dataclass(frozen=True)
class Measurement:
    variant: str
    durations: dict[int, float]
    first_step_seconds: float
    wall_seconds: float

    @property
    def median_step(self) -> float:
        return statistics.median(d for step, d in self.durations.items() if step > 0)


def bench_job(steps: int) -> SpeedrunJob:
    manifest = load_job(HELLO).manifest()
    manifest["metadata"]["name"] = "bench-overhead"
    manifest["spec"]["train"].update({"steps": steps, "stepsPerEval": steps})
    return SpeedrunJob.model_validate(manifest)


def run_plain(job_file: Path, output: Path) -> Measurement:
    log = output / "steps.log"
    output.mkdir(parents=True)
    started = time.time()
    subprocess.run(
        [sys.executable, __file__, "--plain-child", str(job_file), str(output), str(log)],
        check=True,
        cwd=output,
        stdout=subprocess.DEVNULL,
        stderr=(output / "stderr.log").open("wb"),
    )
    wall = time.time() - started
    durations: dict[int, float] = {}
    first_at: float | None = None
    for line in log.read_text().splitlines():
        at, _, message = line.partition(" ")
        record = json.loads(message)
        if record.get("event") == "log" and "throughput/duration" in record["metrics"]:
            durations[record["step"]] = record["metrics"]["throughput/duration"]
            if record["step"] == 0 and first_at is None:
                first_at = float(at)
    assert first_at is not None, f"no step 0 in {log}"
    return Measurement("plain", durations, first_at - started, wall)


def run_speedrun(job_file: Path, output: Path) -> Measurement:
    from speedrun_trainer.step_log import read_history

    output.mkdir(parents=True)
    started = time.time()
    subprocess.run(
        [SPEEDRUN, "train", str(job_file), "--output", str(output)],
        check=True,
        cwd=output,
        stdout=subprocess.DEVNULL,
        stderr=(output / "stderr.log").open("wb"),
    )
    wall = time.time() - started
    history = read_history(str(output / "bench-overhead" / "steps"))
    first = history.steps[0].finished_at
    assert first is not None
    return Measurement("speedrun", {s: r.duration for s, r in history.steps.items()}, first - started, wall)


def plain_child(job_file: Path, output: Path, log: Path) -> None:
    """The baseline process: Levanter's own entry point on the same TrainLmConfig, stock tracker only."""
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter("%(created).6f %(message)s"))
    steps_logger = logging.getLogger(STEP_LOGGER)
    steps_logger.addHandler(handler)
    steps_logger.propagate = False
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GIT_PYTHON_REFRESH": "quiet"})
    from levanter.checkpoint import CheckpointerConfig
    from levanter.main import train_lm
    from levanter.tracker.json_logger import JsonLoggerConfig

    from speedrun_trainer.levanter_config import build_train_config
    from speedrun_trainer.paths import RunPaths

    job = load_job(job_file)
    paths = RunPaths(output=str(output), job=job.name, local_dir=output / "local")
    config = build_train_config(
        job.spec, paths, "bench-plain", [JsonLoggerConfig(logger_name=STEP_LOGGER)], step_sink=""
    )
    # Levanter's stock checkpointer with the same settings: the baseline has no step records to write first.
    ours = config.trainer.checkpointer
    stock = CheckpointerConfig(
        base_path=ours.base_path,
        append_run_id_to_base_path=ours.append_run_id_to_base_path,
        save_interval=ours.save_interval,
        keep=ours.keep,
    )
    trainer = dataclasses.replace(config.trainer, checkpointer=stock)
    train_lm.main(dataclasses.replace(config, trainer=trainer))


def report(runs: list[Measurement]) -> str:
    lines = [f"{'variant':<10} {'median step (s)':>16} {'first step (s)':>15} {'wall (s)':>9} {'steps':>6}"]
    for run in runs:
        lines.append(
            f"{run.variant:<10} {run.median_step:>16.4f} {run.first_step_seconds:>15.1f} "
            f"{run.wall_seconds:>9.1f} {len(run.durations):>6}"
        )
    plain = [r for r in runs if r.variant == "plain"]
    ours = [r for r in runs if r.variant == "speedrun"]
    step_ratio = statistics.median(r.median_step for r in ours) / statistics.median(
        r.median_step for r in plain
    )
    first_ratio = statistics.median(r.first_step_seconds for r in ours) / statistics.median(
        r.first_step_seconds for r in plain
    )
    lines.append(f"per-step time ratio speedrun/plain: {step_ratio:.3f} (target <= 1.05)")
    lines.append(f"time-to-first-step ratio speedrun/plain: {first_ratio:.3f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=1, help="Alternate the two variants this many times.")
    parser.add_argument("--plain-child", nargs=3, metavar=("FILE", "OUTPUT", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_child:
        job_file, output, log = (Path(value) for value in args.plain_child)
        plain_child(job_file, output, log)
        return 0
    with tempfile.TemporaryDirectory(prefix="trainer-overhead-") as scratch:
        root = Path(scratch)
        job_file = root / "bench.yaml"
        job_file.write_text(yaml.safe_dump(bench_job(args.steps).manifest(), sort_keys=False))
        runs: list[Measurement] = []
        for repeat in range(args.repeats):
            runs.append(run_plain(job_file, root / f"plain-{repeat}"))
            runs.append(run_speedrun(job_file, root / f"speedrun-{repeat}"))
            print(report(runs), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
