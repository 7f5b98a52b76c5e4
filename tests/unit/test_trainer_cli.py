"""``speedrun train`` and ``speedrun run`` refuse bad input before anything heavy loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from speedrun_operator.cli import main

pytestmark = pytest.mark.unit


def test_train_needs_exactly_one_of_a_file_or_a_job_reference(tmp_path: Path) -> None:
    runner = CliRunner()
    neither = runner.invoke(main, ["train"])
    assert neither.exit_code == 2 and "give a FILE or --job NAMESPACE/NAME" in neither.output
    (tmp_path / "job.yaml").write_text("kind: SpeedrunJob\n")
    both = runner.invoke(main, ["train", str(tmp_path / "job.yaml"), "--job", "team-a/run-1"])
    assert both.exit_code == 2 and "one of them" in both.output


@pytest.mark.parametrize("command", ["run", "train"])
def test_an_invalid_file_is_reported_field_by_field_with_exit_code_2(tmp_path: Path, command: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: speedrun.marin.community/v1alpha1\nkind: SpeedrunJob\nmetadata: {name: bad}\n"
        "spec: {author: {name: A}, description: d, model: {preset: llama_nano},\n"
        "       train: {batchSize: 8, steps: 0, learningRate: 0.001},\n"
        "       resources: {cpu: {}, peakFlopsPerChip: 1e11}}\n"
    )
    result = CliRunner().invoke(main, [command, str(bad)])
    assert result.exit_code == 2
    assert "spec.train.steps" in result.output
