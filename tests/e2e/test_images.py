"""The images the project ships, built with podman on a local Debian base and run for real.

Each runs as a non-root user, answers ``speedrun --version`` and ``speedrun info`` inside, and holds exactly
what pyproject.toml pins; the operator image stays without the training stack and runs read-only.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from harness import images
from harness.images import ImageSet

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
EXAMPLES = ROOT / "examples"

# Run inside an image (whose Python need not have `packaging`): the project's declared requirements and every
# installed distribution's version; the test checks one against the other.
INSTALLED = """
import importlib.metadata as md, json
print(json.dumps({"requires": md.requires("speedrun-operator") or [],
                  "installed": {d.metadata["Name"].lower(): d.version for d in md.distributions()}}))
"""


def pin_report(requires: list[str], installed: dict[str, str], extra: str) -> dict[str, dict[str, Any]]:
    installed = {canonicalize_name(name): version for name, version in installed.items()}
    report: dict[str, dict[str, Any]] = {}
    for line in requires:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        version = installed.get(canonicalize_name(requirement.name)) or installed.get(
            requirement.name.lower()
        )
        ok = version is not None and requirement.specifier.contains(version, prereleases=True)
        report[requirement.name] = {"spec": str(requirement.specifier), "installed": version, "ok": ok}
    return report


def project_requirements(extra: str) -> set[str]:
    lines = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"][extra]]
    return {Requirement(line).name for line in lines}


def run(ref: str, *command: str, **kwargs: object) -> str:
    result = images.run_in_image(ref, command, **kwargs)  # type: ignore[arg-type]
    assert result.returncode == 0, f"{' '.join(command)} failed in {ref}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("image", ["speedrun-trainer", "speedrun-operator"])
def test_each_image_runs_as_a_non_root_user(project_images: ImageSet, image: str) -> None:
    ref = project_images.images[image].ref
    assert run(ref, "id", "-u").strip() == "1000"
    assert run(ref, "id", "-g").strip() == "1000"


@pytest.mark.parametrize("image", ["speedrun-trainer", "speedrun-operator"])
def test_speedrun_version_and_info_work_inside_each_image(project_images: ImageSet, image: str) -> None:
    ref = project_images.images[image].ref
    assert VERSION in run(ref, "speedrun", "--version")
    info = json.loads(
        run(
            ref,
            "speedrun",
            "info",
            "--json",
            "/examples/hello-world-cpu.yaml",
            volumes={str(EXAMPLES): "/examples"},
        )
    )
    host_info = json.loads(_host_info())
    assert info == host_info


def _host_info() -> str:
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "speedrun_operator.cli",
            "info",
            "--json",
            str(EXAMPLES / "hello-world-cpu.yaml"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


@pytest.mark.parametrize(
    ("image", "extra"), [("speedrun-trainer", "trainer"), ("speedrun-operator", "operator")]
)
def test_what_each_image_installs_matches_the_project_pins(
    project_images: ImageSet, image: str, extra: str
) -> None:
    ref = project_images.images[image].ref
    found = json.loads(run(ref, "python", "-c", INSTALLED))
    report = pin_report(found["requires"], found["installed"], extra)
    assert set(report) == project_requirements(extra)
    wrong = {name: entry for name, entry in report.items() if not entry["ok"]}
    assert wrong == {}, f"installed versions outside the pins of pyproject.toml: {wrong}"
    if extra == "trainer":
        assert report["jax"]["installed"] == "0.7.2"
        assert report["levanter"]["installed"] == "1.2.dev1644"
        assert report["ray"]["installed"] == "2.49.2"


def test_the_operator_image_has_no_training_stack_and_runs_read_only(project_images: ImageSet) -> None:
    ref = project_images.images["speedrun-operator"].ref
    probe = "import importlib.util as u; print([m for m in ('jax', 'levanter', 'ray') if u.find_spec(m)])"
    assert run(ref, "python", "-c", probe, read_only=True).strip() == "[]"
    assert VERSION in run(ref, "speedrun", "--version", read_only=True)


def test_the_trainer_image_imports_levanter_jax_and_ray_offline(project_images: ImageSet) -> None:
    ref = project_images.images["speedrun-trainer"].ref
    probe = "import levanter, jax, ray; print(jax.devices()[0].platform, ray.__version__)"
    assert run(ref, "python", "-c", probe).split() == ["cpu", "2.49.2"]


def test_a_second_request_finds_every_image_in_the_cache(project_images: ImageSet) -> None:
    again = images.ensure_images()
    assert {i.ref for i in again.images.values()} == {i.ref for i in project_images.images.values()}
    assert all(image.cached for image in [again.base, *again.images.values()])
    assert all(image.seconds < 10 for image in [again.base, *again.images.values()])
