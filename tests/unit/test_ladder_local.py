"""`speedrun run` on a ladder, without training: each rung's results come from a stand-in trainer (Marin's
own results for that size), and the ladder's status is decided as the operator decides it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from speedrun_operator.api import Results
from speedrun_operator.api.ladder import SpeedrunLadderStatus
from speedrun_operator.ladder import local
from speedrun_operator.ladder.rungs import Rung
from speedrun_operator.manifests import load_ladder

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ladders" / "adamw-llama-scaling-v5p-32.yaml"
MARIN = ROOT / "tests" / "data" / "leaderboard" / "marin" / "adamw_llama_scaling"
MARIN_FOLDERS = {"130m": "130m", "300m": "300m", "520m": "520m", "1-2b": "1_2b"}


def write_results(rung: Rung) -> Results:
    """What the trainer leaves behind for a rung: its results file, where the layout says."""
    results = Path(rung.job.spec.output or "") / rung.job.name / "speedrun_results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text((MARIN / MARIN_FOLDERS[rung.name] / "speedrun_results.json").read_text())
    found = local.finished(rung)
    assert found is not None
    return found


def test_a_local_ladder_trains_each_unfinished_rung_in_order_and_writes_the_operators_status(
    tmp_path: Path,
) -> None:
    ladder, rungs = load_ladder(EXAMPLE)
    rungs = local.with_output(ladder, rungs, str(tmp_path))
    write_results(rungs[0])  # a rung finished by an earlier, interrupted run
    trained: list[str] = []
    reported: list[SpeedrunLadderStatus] = []

    def train(rung: Rung) -> Results:
        trained.append(rung.name)
        return write_results(rung)

    status = local.run(ladder, rungs, train, reported.append)
    assert trained == ["300m", "520m", "1-2b"]
    assert [s.rungs_done for s in reported] == ["1/4", "2/4", "3/4", "4/4"]
    assert [s.fit is not None for s in reported] == [False, False, True, True]
    assert status.phase.value == "Succeeded" and status.fit is not None and status.fit.site is not None
    written = yaml.safe_load((tmp_path / "adamw-llama-scaling" / local.STATUS_FILE).read_text())
    assert written["kind"] == "SpeedrunLadder"
    assert written["status"]["fit"]["site"]["projectedBpb"] == status.fit.site.projected_bpb
    info = json.loads((MARIN / "1_2b" / "speedrun_results.json").read_text())["runs"][0]["run_info"]
    assert written["status"]["rungs"][3]["hardwareFlops"] == info["training_hardware_flops"]


def test_the_exported_ladder_folder_is_ranked_as_one_group_with_the_statuss_projection(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from speedrun_operator.cli import main

    ladder, rungs = load_ladder(EXAMPLE)
    rungs = local.with_output(ladder, rungs, str(tmp_path / "out"))

    def train(rung: Rung) -> Results:
        """The trainer's two files: its results (Marin's, credited to the ladder's author) and its job."""
        folder = Path(rung.job.spec.output or "") / rung.job.name
        folder.mkdir(parents=True)
        document = json.loads((MARIN / MARIN_FOLDERS[rung.name] / "speedrun_results.json").read_text())
        document["runs"][0]["run_info"]["author"] = rung.job.spec.author.model_dump(mode="json")
        (folder / "speedrun_results.json").write_text(json.dumps(document))
        (folder / "speedrun_job.yaml").write_text(yaml.safe_dump(rung.job.manifest()))
        found = local.finished(rung)
        assert found is not None
        return found

    status = local.run(ladder, rungs, train, lambda _: None)
    exported = tmp_path / "submission"
    result = CliRunner().invoke(main, ["export", str(tmp_path / "out" / ladder.name), str(exported)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (exported / ladder.name).iterdir()) == sorted(r.job.name for r in rungs)
    result = CliRunner().invoke(main, ["leaderboard", str(exported), "--json"])
    assert result.exit_code == 0, result.output
    board = next(b for b in json.loads(result.stdout)["boards"] if "groups" in b)
    (group,) = board["groups"]
    assert group["name"] == ladder.name and len(group["runs"]) == 4
    assert status.fit is not None and status.fit.site is not None and status.fit.converged is not None
    assert group["site_fit"]["projected_bpb"] == status.fit.site.projected_bpb
    assert group["converged_fit"]["projected_bpb"] == pytest.approx(status.fit.converged.projected_bpb)
