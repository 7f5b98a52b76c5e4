"""No package of ours shadows the standard library.

That the operator imports without JAX, Levanter or Ray is checked where it is strongest: every operator module
imports in the operator image, where they are not installed (tests/e2e/test_images.py).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def test_no_package_shadows_the_standard_library_operator_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import operator; print(operator.__file__)"], capture_output=True, text=True
    )
    assert "site-packages" not in result.stdout and result.stdout.strip().endswith("operator.py")


def test_the_cli_loads_a_commands_module_only_when_that_command_runs() -> None:
    """`speedrun operator` runs for weeks: it keeps no other command's code (rich among it) in memory."""
    probe = (
        "import sys; from click.testing import CliRunner; import speedrun_operator.cli as cli; "
        "loaded = lambda: sorted(m for m in sys.modules if m.startswith('speedrun_operator.cli.')); "
        "before = loaded(); CliRunner().invoke(cli.main, ['crd', '--help']); print(before, loaded())"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[] ['speedrun_operator.cli.crd']"
