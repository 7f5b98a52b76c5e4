"""A tiny three-rung SpeedrunLadder trains for real on this machine's CPU through `speedrun run`, rung by
rung, and ends with the status the operator would write: each rung's bpb and the fit through them.

Three tiny Llamas (1 layer; 16, 32 and 64 wide; 5, 10 and 20 steps) on the bundled corpus, tokenized once in
the ladder's folder. A second `speedrun run` keeps the finished rungs and trains nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.trainer import TINY_SPEC, SpeedrunProcess, read_run_info
from speedrun_operator.submissions.power_law import TARGET_FLOPS
from speedrun_operator.submissions.site_fit import site_fit

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS = 900
LADDER = "tiny-ladder"
SIZES = {"xs": (16, 5), "s": (32, 10), "m": (64, 20)}
"""Rung: (hidden size, steps)."""


def tiny_ladder() -> dict[str, Any]:
    base = {key: value for key, value in TINY_SPEC.items() if key not in ("author", "description")}
    return {
        "apiVersion": "speedrun.marin.community/v1alpha1",
        "kind": "SpeedrunLadder",
        "metadata": {"name": LADDER},
        "spec": {
            "author": TINY_SPEC["author"],
            "description": "Three tiny Llamas, for the ladder's end-to-end test.",
            "base": base,
            "rungs": [
                {"name": name, "model": {"hiddenDim": hidden}, "train": {"steps": steps}}
                for name, (hidden, steps) in SIZES.items()
            ],
        },
    }


def test_a_tiny_ladder_trains_rung_by_rung_with_speedrun_run_and_ends_with_a_fit(
    tmp_path: Path, speedrun_processes: Callable[..., SpeedrunProcess]
) -> None:
    path = tmp_path / "ladder.yaml"
    path.write_text(yaml.safe_dump(tiny_ladder(), sort_keys=False))
    output = tmp_path / "out"
    process = speedrun_processes(
        ["run", str(path), "--output", str(output)], cwd=tmp_path, log=tmp_path / "speedrun.log"
    )
    assert process.wait(timeout=RUN_TIMEOUT_SECONDS) == 0, process.output()[-4000:]

    folder = output / LADDER
    infos = {name: read_run_info(folder / f"{LADDER}-{name}" / "speedrun_results.json") for name in SIZES}
    for name, (hidden, steps) in SIZES.items():
        assert infos[name]["model_config"]["hidden_dim"] == hidden
        assert infos[name]["steps_completed"] == steps
    document = yaml.safe_load((folder / "speedrun_ladder.yaml").read_text())
    status = document["status"]
    assert (status["phase"], status["rungsDone"]) == ("Succeeded", "3/3")
    for rung in status["rungs"]:
        assert rung["evalBpb"] == pytest.approx(infos[rung["name"]]["eval_bpb"])
    fit = site_fit([(info["model_flops"], info["eval_bpb"]) for info in infos.values()])
    assert fit is not None and status["fit"]["points"] == 3
    assert status["fit"]["site"]["projectedBpb"] == pytest.approx(fit.law.predict(TARGET_FLOPS), rel=1e-12)
    printed = process.output()
    assert "site fit" in printed and f"{status['fit']['site']['projectedBpb']:.4f}" in printed

    again = speedrun_processes(
        ["run", str(path), "--output", str(output)], cwd=tmp_path, log=tmp_path / "again.log"
    )
    assert again.wait(timeout=120) == 0, again.output()[-4000:]
    assert again.output().count("finished already, results kept") == 3
    assert ": training" not in again.output(), "no rung trained again"
    exported = tmp_path / "submission"
    export = speedrun_processes(
        ["export", str(folder), str(exported)], cwd=tmp_path, log=tmp_path / "export.log"
    )
    assert export.wait(timeout=120) == 0, export.output()[-4000:]
    assert sorted(p.name for p in (exported / LADDER).iterdir()) == [
        f"{LADDER}-{name}" for name in sorted(SIZES)
    ]
    assert json.loads(
        (exported / LADDER / f"{LADDER}-m" / "speedrun_results.json").read_text()
    ) == json.loads((folder / f"{LADDER}-m" / "speedrun_results.json").read_text())
