"""``make hello`` on a fresh copy of the tree needs Python 3.11 and nothing else: it runs as an unprivileged
user (``nobody`` when the tests run as root), with every container tool, package manager and browser on PATH
replaced by a stub that records being called, and with pip kept off the network.

Cost, on CI's 2 cores: the first run fills a wheelhouse in the harness cache with the wheels of the project's
requirements (``pip wheel``, ~2.5 GB, downloaded once and reused while pyproject.toml is unchanged); every run
installs them offline into a new venv (1-2 min) and trains the hello-world (~1.5 min). Measured on the shared
2-core machine: 5.6 min, a top-up of the wheelhouse included.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import build

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
# What `make hello` must never reach for: installing, containers, the real node, a browser.
FORBIDDEN = [
    "apt-get", "apt", "dpkg", "sudo", "su", "podman", "docker", "buildah", "containerd", "runc", "ctr",
    "debootstrap", "chromium", "kubectl", "helm", "go",
]  # fmt: skip
PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "--quiet"]
STUB = '#!/bin/sh\necho "$(basename "$0") $*" >> "{log}"\nexit 127\n'


def requirements() -> list[str]:
    """What the Makefile's venv installs (the project's extras operator, trainer and dev), and what building
    the project itself needs."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    extras = project["optional-dependencies"]
    return [
        "pip",
        *pyproject["build-system"]["requires"],
        *project["dependencies"],
        *(line for extra in ("operator", "trainer", "dev") for line in extras[extra]),
    ]


def wheelhouse() -> Path:
    """Wheels of every requirement, kept in the harness cache and refreshed when the requirements change."""
    wanted = requirements()
    house = build.cache_dir() / "wheelhouse"
    done = house / f".complete-{hashlib.sha256(chr(10).join(wanted).encode()).hexdigest()[:16]}"
    if not done.exists():
        house.mkdir(parents=True, exist_ok=True)
        listing = house / "requirements.txt"
        listing.write_text("\n".join(wanted) + "\n")
        subprocess.run(
            # --find-links: the wheels already there are reused, only new requirements are fetched.
            [*PIP_WHEEL, "--wheel-dir", str(house), "--find-links", str(house), "-r", str(listing)],
            check=True,
            timeout=3600,
        )
        done.touch()
    return house


def python311() -> str:
    found = shutil.which("python3.11", path="/usr/local/bin:/usr/bin:/bin")
    assert found, "this test needs a system-wide python3.11 (in /usr/bin or /usr/local/bin)"
    return found


@pytest.fixture
def fresh_copy() -> Iterator[Path]:
    """The tree as a fresh clone would have it (tracked and new files), in a folder of its own under /tmp
    (short paths: Ray's socket names must fit in 107 bytes) that the unprivileged user owns."""
    base = Path(tempfile.mkdtemp(prefix="hello-", dir="/tmp"))
    try:
        files = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        for relative in filter(None, files.split("\0")):
            source = ROOT / relative
            if source.is_file():
                target = base / "repo" / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        wheels = base / "wheels"
        wheels.mkdir()
        for wheel in wheelhouse().glob("*.whl"):
            try:
                os.link(wheel, wheels / wheel.name)
            except OSError:
                shutil.copy2(wheel, wheels / wheel.name)
        for folder in ("home", "tmp", "stubs"):
            (base / folder).mkdir()
        for name in FORBIDDEN:
            stub = base / "stubs" / name
            stub.write_text(STUB.format(log=base / "forbidden.log"))
            stub.chmod(0o755)
        (base / "forbidden.log").touch()
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(base)], check=True)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_make_hello_trains_as_an_unprivileged_user_with_only_python(fresh_copy: Path) -> None:
    base = fresh_copy
    repo = base / "repo"
    env = {
        "PATH": f"{base / 'stubs'}:{Path(python311()).parent}:/usr/bin:/bin",
        "HOME": str(base / "home"),
        "TMPDIR": str(base / "tmp"),
        "LANG": "C.UTF-8",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(base / "wheels"),
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    as_user = (
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if os.geteuid() == 0 else []
    )
    result = subprocess.run(
        [*as_user, "make", "hello"],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert (base / "forbidden.log").read_text() == "", "make hello called what it must not need"
    results = repo / "speedrun-output" / "hello-world-cpu" / "speedrun_results.json"
    assert results.is_file(), output[-6000:]
    assert f"results: {results}" in output
    venv_python = repo / ".venv" / "bin" / "python"
    assert venv_python.exists()
    if os.geteuid() == 0:
        assert (repo / ".venv").stat().st_uid == NOBODY and results.stat().st_uid == NOBODY
