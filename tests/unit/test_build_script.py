"""docker/build.sh, the one command that builds the images (for users and for the e2e tier), with a stand-in
engine that records what it is asked to do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docker" / "build.sh"
VERSION = "0.1.0"
TOOLS = ("bash", "sh", "sed", "head", "dirname", "basename")


def path_without_engines(tmp_path: Path) -> Path:
    """A PATH folder with only the tools the script itself uses: whatever engine the machine has is hidden."""
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        if not (tools / tool).exists():
            (tools / tool).symlink_to(found)
    return tools


def build(
    tmp_path: Path, *args: str, engine: str = "podman"
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / engine
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{path_without_engines(tmp_path)}"}
    env.pop("CONTAINER_ENGINE", None)
    result = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=tmp_path)
    return result, calls.read_text().splitlines() if calls.exists() else []


def test_one_command_builds_the_operator_and_the_trainer_for_an_accelerator_and_pushes(
    tmp_path: Path,
) -> None:
    result, calls = build(
        tmp_path, "--accelerator", "cuda", "--registry", "europe-docker.pkg.dev/p/r", "--push"
    )
    assert result.returncode == 0, result.stderr
    operator_ref = f"europe-docker.pkg.dev/p/r/speedrun-operator:{VERSION}"
    trainer_ref = f"europe-docker.pkg.dev/p/r/speedrun-trainer:{VERSION}-cuda"
    builds = [call for call in calls if call.startswith("build ")]
    assert len(builds) == 2
    assert f"--file={ROOT}/docker/operator.Dockerfile --tag={operator_ref} {ROOT}" in builds[0]
    assert (
        f"--build-arg=ACCELERATOR=cuda --file={ROOT}/docker/trainer.Dockerfile --tag={trainer_ref}"
        in builds[1]
    )
    # podman's OCI format would drop SHELL, which the Dockerfiles' RUN lines need.
    assert all("--format=docker" in call for call in builds)
    assert calls[2:] == [f"push {operator_ref}", f"push {trainer_ref}"]
    assert result.stdout.split() == ["built", operator_ref, "built", trainer_ref]


def test_docker_is_used_when_podman_is_not_there_and_build_flags_pass_through(tmp_path: Path) -> None:
    result, calls = build(
        tmp_path,
        "--only",
        "trainer",
        "--base-image",
        "debian:bookworm",
        "--",
        "--network=host",
        engine="docker",
    )
    assert result.returncode == 0, result.stderr
    (call,) = calls
    assert call.startswith("build --network=host --build-arg=BASE_IMAGE=debian:bookworm ")
    assert "--format=docker" not in call and f"speedrun-trainer:{VERSION}-cpu" in call


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--accelerator", "gpu"], "--accelerator must be cpu, cuda or tpu, not 'gpu'"),
        (["--only", "both"], "--only must be operator or trainer"),
        (["--registy", "x"], "unknown argument '--registy'"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result, calls = build(tmp_path, *args)
    assert result.returncode == 2 and calls == []
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_without_podman_or_docker_it_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(path_without_engines(tmp_path))}
    env.pop("CONTAINER_ENGINE", None)
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert "neither podman nor docker is installed" in result.stderr
