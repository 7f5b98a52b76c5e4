"""A run that fails in the trainer, driven as a RayJob's driver drives it (``speedrun train --ray``, its
training task on a worker host), keeps its traceback in the output on gs:// (a GCS emulator); ``speedrun
logs`` prints it from there once the Ray head is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gcsfs
import pytest

from fixtures.ray_head import ray_head
from fixtures.storage import GcsEmulator
from fixtures.trainer import JobFactory, write_job
from speedrun_operator import contract

pytestmark = pytest.mark.e2e

SPEEDRUN = str(Path(sys.executable).with_name("speedrun"))
# Levanter's words when a job's cacheUrl holds no cache: it fails before the first step.
FAILURE = "ValueError: Datasets cannot be empty"


def test_a_trainer_failure_keeps_its_traceback_in_the_output_and_speedrun_logs_shows_it(
    gcs_emulator: GcsEmulator, tiny_job: JobFactory, tmp_path: Path
) -> None:
    output = gcs_emulator.url("kept-logs")
    job = tiny_job(
        name="fails",
        dataset={
            "bundled": False,
            "cacheUrl": gcs_emulator.url("no-cache-here"),
            "tokenizer": "bundled",
            "validationUrls": {},
        },
    )
    env = {**os.environ, **gcs_emulator.env}
    env.pop("SPEEDRUN_JOB_NAMESPACE", None)
    with ray_head(tmp_path, gcs_emulator.env) as address:
        driver = subprocess.run(
            [SPEEDRUN, "train", str(write_job(job, tmp_path)), "--ray", "--output", output],
            capture_output=True,
            text=True,
            env={**env, "RAY_ADDRESS": address},
            timeout=600,
            cwd=tmp_path,
        )
    assert driver.returncode != 0, driver.stdout[-2000:]
    assert FAILURE in driver.stderr, "the driver's own output still says it"

    fs = gcsfs.GCSFileSystem(endpoint_url=gcs_emulator.endpoint, token="anon", skip_instance_cache=True)
    logs = contract.OutputLayout(output=output, job="fails").logs
    names = sorted(path.rsplit("/", 1)[-1] for path in fs.ls(logs.removeprefix("gs://")))
    parsed = [contract.parse_log_name(name) for name in names]
    assert {process for _, process in filter(None, parsed)} == {"driver", "host0"}, names
    assert len({attempt for attempt, _ in filter(None, parsed)}) == 1, "one attempt: driver and host share it"
    for name in names:
        kept = fs.cat_file(f"{logs.removeprefix('gs://')}/{name}").decode()
        assert "Traceback (most recent call last)" in kept and FAILURE in kept, name
        assert "[default/fails] failed; the traceback is kept at" in kept, name

    shown = subprocess.run(
        [SPEEDRUN, "logs", contract.OutputLayout(output=output, job="fails").job_dir],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    headers = [line for line in shown.stdout.splitlines() if line.startswith("==> attempt 1 of 1")]
    assert [header.split(", ")[1].split(":")[0] for header in headers] == ["driver", "host0"]
    assert shown.stdout.count(FAILURE) >= 2
