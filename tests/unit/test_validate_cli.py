"""`speedrun validate` names the file, the field, the bad value and the fix — and never shows a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from speedrun_operator.cli import main

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
BAD = Path(__file__).parent / "bad_specs"
BAD_FILES = sorted(BAD.glob("*.yaml"))


def speedrun(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "speedrun_operator.cli", *args], capture_output=True, text=True, cwd=ROOT
    )


def expected_line(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path} must start with '# expect: <error text>'"
    return first.removeprefix("# expect: ")


def test_the_bad_spec_collection_is_large_enough() -> None:
    assert len(BAD_FILES) >= 25


def test_a_folder_of_bad_files_exits_nonzero_with_one_clear_line_per_error() -> None:
    result = speedrun("validate", str(BAD))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"{len(BAD_FILES)} of {len(BAD_FILES)} files invalid"
    for path in BAD_FILES:
        mine = [line for line in lines if line.startswith(f"{path}:")]
        assert len(mine) == 1, f"expected exactly one error line for {path.name}, got {mine}"


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_each_bad_file_gets_the_error_that_names_its_field_and_fix(path: Path) -> None:
    # In-process for speed; the folder test above runs the real command and checks for tracebacks.
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert expected_line(path) in result.stderr
    assert result.stderr.startswith(str(path))


def test_every_example_is_valid() -> None:
    result = speedrun("validate", "examples")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("files valid")


def test_a_missing_file_is_reported_without_a_traceback() -> None:
    result = speedrun("validate", "does-not-exist.yaml")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_other_kinds_found_in_a_folder_are_left_alone_but_a_named_one_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
    )
    (tmp_path / "job.yaml").write_text((ROOT / "examples" / "tpu-v4-8.yaml").read_text())
    folder = speedrun("validate", str(tmp_path))
    assert folder.returncode == 0 and folder.stdout.strip() == "1 file valid"
    named = speedrun("validate", str(tmp_path / "kustomization.yaml"))
    assert named.returncode == 2 and "no SpeedrunJob in this file" in named.stderr
