"""The operator stays light (no JAX, no Levanter); the trainer runs without kopf."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def modules_loaded_by(statement: str) -> set[str]:
    probe = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_the_cli_and_api_import_without_jax_levanter_or_ray() -> None:
    loaded = modules_loaded_by(
        "import speedrun_operator.cli, speedrun_operator.crd, speedrun_operator.runinfo"
    )
    assert not {"jax", "levanter", "ray", "haliax"} & loaded


def test_no_package_shadows_the_standard_library_operator_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import operator; print(operator.__file__)"], capture_output=True, text=True
    )
    assert "site-packages" not in result.stdout and result.stdout.strip().endswith("operator.py")
