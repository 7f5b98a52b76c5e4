"""Results and step records on gs://, through gcsfs, against a GCS emulator on loopback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fixtures.storage import GcsEmulator
from fixtures.trainer import JobFactory
from speedrun_operator import storage
from speedrun_operator.api import parse_job
from speedrun_trainer.paths import RunPaths
from speedrun_trainer.results import RunOutcome, write_submission
from speedrun_trainer.step_log import EvalRecord, StepRecord, StepRecorder, read_history

pytestmark = pytest.mark.e2e


def test_a_run_publishes_its_submission_to_gs_and_it_reads_back(
    gcs_emulator: GcsEmulator, tiny_job: JobFactory, tmp_path: Path
) -> None:
    import gcsfs

    job = tiny_job(name="on-gcs")
    paths = RunPaths(output=gcs_emulator.url("runs"), job=job.name, local_dir=tmp_path)
    for attempt, steps in (("20260101T000000000000Z", range(0, 6)), ("20260101T000100000000Z", range(4, 10))):
        recorder = StepRecorder(paths.steps, attempt)
        for step in steps:
            recorder.add_step(StepRecord(step, 0.5))
        recorder.add_eval(EvalRecord(max(steps), {"eval/bundled/kjv/bpb": 2.0}))
        recorder.close()

    history = read_history(paths.steps)
    assert sorted(history.steps) == list(range(10)) and history.training_time == 5.0
    outcome = RunOutcome(history, {}, 1, "bundled/kjv", datetime.now(UTC), None, None)
    info = write_submission(job, outcome, paths)

    # Read back with a fresh filesystem object, as the leaderboard or the operator would.
    fs = gcsfs.GCSFileSystem(endpoint_url=gcs_emulator.endpoint, token="anon", skip_instance_cache=True)
    assert paths.results == "gs://speedruns/runs/on-gcs/speedrun_results.json"
    assert sorted(name.rsplit("/", 1)[-1] for name in fs.ls("speedruns/runs/on-gcs")) == [
        "speedrun_job.yaml",
        "speedrun_results.json",
        "steps",
    ]
    document = json.loads(fs.cat_file("speedruns/runs/on-gcs/speedrun_results.json"))
    assert document["runs"][0]["run_info"] == info
    assert (info["training_time"], info["steps_completed"], info["attempts"], info["eval_bpb"]) == (
        5.0,
        10,
        2,
        2.0,
    )
    import yaml

    assert parse_job(yaml.safe_load(storage.read_text(paths.config))).spec == job.spec
