"""The images the project ships, built by docker/build.sh with podman on a local Debian base, run for real.

The one tier for what an image holds and how it runs: a numeric non-root user, ``speedrun --version`` and
``speedrun info`` inside, exactly what pyproject.toml pins, the configuration KubeRay and Kubernetes rely on
(command, environment, ports), and an operator without the training stack that runs read-only. The
Dockerfiles as files (lint, base argument, build context) are tests/unit/test_dockerfiles.py's.
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
from speedrun_operator.config import OperatorConfig

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
EXAMPLES = ROOT / "examples"
TRAINING_STACK = ("jax", "jaxlib", "levanter", "haliax", "ray")
# kopf imports the official client whenever it is installed; the operator's own client is the project's.
NOT_IN_THE_OPERATOR_IMAGE = (*TRAINING_STACK, "kubernetes")

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


def env_of(ref: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in images.image_config(ref)["Env"])


def run(ref: str, *command: str, **kwargs: object) -> str:
    result = images.run_in_image(ref, command, **kwargs)  # type: ignore[arg-type]
    assert result.returncode == 0, f"{' '.join(command)} failed in {ref}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("image", ["speedrun-trainer", "speedrun-operator"])
def test_each_image_runs_as_a_numeric_non_root_user(project_images: ImageSet, image: str) -> None:
    ref = project_images.images[image].ref
    # Numeric in the image's configuration, or Kubernetes' runAsNonRoot cannot verify it.
    assert images.image_config(ref)["User"] == "1000:1000"
    assert run(ref, "id", "-u").strip() == "1000"
    assert run(ref, "id", "-g").strip() == "1000"
    assert run(ref, "id", "-un").strip() == "speedrun"  # a user the image creates, not a bare number


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


def operator_modules_here() -> list[str]:
    import pkgutil

    import speedrun_operator

    found = pkgutil.walk_packages(speedrun_operator.__path__, "speedrun_operator.")
    return sorted(m.name for m in found if not m.name.endswith("__main__"))


def test_the_operator_image_has_no_training_stack_nor_kubernetes_client_and_imports_without_them(
    project_images: ImageSet,
) -> None:
    ref = project_images.images["speedrun-operator"].ref
    probe = f"import importlib.util as u; print([m for m in {NOT_IN_THE_OPERATOR_IMAGE!r} if u.find_spec(m)])"
    assert run(ref, "python", "-c", probe, read_only=True).strip() == "[]"
    # Every module of the operator package imports there, read-only, with those absent.
    every_module = (
        "import importlib, json, pkgutil, speedrun_operator as p; "
        "names = sorted(m.name for m in pkgutil.walk_packages(p.__path__, 'speedrun_operator.') "
        "if not m.name.endswith('__main__')); [importlib.import_module(n) for n in names]; "
        "print(json.dumps(names))"
    )
    imported = json.loads(run(ref, "python", "-c", every_module, read_only=True))
    assert imported == operator_modules_here()
    assert VERSION in run(ref, "speedrun", "--version", read_only=True)


def test_the_operator_image_runs_the_operator_read_only_and_serves_metrics(project_images: ImageSet) -> None:
    ref = project_images.images["speedrun-operator"].ref
    config = images.image_config(ref)
    assert config["Cmd"] == ["speedrun", "operator"]
    assert not config.get("Entrypoint")
    assert set(config["ExposedPorts"]) == {f"{OperatorConfig().metrics_port}/tcp"}
    # With a read-only root filesystem only /tmp (an emptyDir) is writable.
    assert config["WorkingDir"] == "/tmp"
    env = env_of(ref)
    assert env["HOME"] == "/tmp" and env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_the_trainer_image_is_ready_for_kuberay_and_offline_levanter(project_images: ImageSet) -> None:
    ref = project_images.images["speedrun-trainer"].ref
    config = images.image_config(ref)
    # KubeRay replaces the command; an ENTRYPOINT would wrap its `bash -lc ... ray start` and break it.
    assert not config.get("Entrypoint")
    assert config["Cmd"][0] == "speedrun"
    env = env_of(ref)
    assert env["GIT_PYTHON_REFRESH"] == "quiet"
    assert {env[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")} == {"1"}
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env["PATH"].startswith("/opt/venv/bin:")
    # KubeRay's probes call wget; `ray stop` needs ps.
    found = run(ref, "sh", "-c", "command -v wget && command -v ps").split()
    assert [Path(tool).name for tool in found] == ["wget", "ps"]
    # A login shell (KubeRay's `bash -lc`): Debian's /etc/profile resets PATH and profile.d puts the venv
    # back in front, once, even when sourced again.
    login = run(ref, "bash", "-lc", ". /etc/profile.d/speedrun-venv.sh; echo $PATH; command -v python")
    path, python = login.split()
    assert path.split(":")[0] == "/opt/venv/bin" and path.split(":").count("/opt/venv/bin") == 1
    assert python == "/opt/venv/bin/python"


def test_the_trainer_image_imports_levanter_jax_and_ray_offline(project_images: ImageSet) -> None:
    ref = project_images.images["speedrun-trainer"].ref
    probe = "import levanter, jax, ray; print(jax.devices()[0].platform, ray.__version__)"
    assert run(ref, "python", "-c", probe).split() == ["cpu", "2.49.2"]


def test_a_second_request_finds_every_image_in_the_cache(project_images: ImageSet) -> None:
    again = images.ensure_images()
    assert {i.ref for i in again.images.values()} == {i.ref for i in project_images.images.values()}
    assert all(image.cached for image in [again.base, *again.images.values()])
    assert all(image.seconds < 10 for image in [again.base, *again.images.values()])
