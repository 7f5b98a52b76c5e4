"""A ladder run on this machine (``speedrun run LADDER``): the rungs one after another, then the same status
the operator would write, decided by the same ``status.ladder``, kept beside the rungs' folders.

A rung whose results exist already is not trained again, so an interrupted ladder resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import yaml

from speedrun_operator import contract
from speedrun_operator.api import Phase, Results, SpeedrunJobStatus
from speedrun_operator.api.ladder import SpeedrunLadder, SpeedrunLadderStatus
from speedrun_operator.ladder.rungs import Rung
from speedrun_operator.reconcile import now_rfc3339
from speedrun_operator.status import ladder as decider
from speedrun_operator.status.results import results_from_json
from speedrun_operator.storage import read_text, write_text_atomic

STATUS_FILE = "speedrun_ladder.yaml"
"""The ladder and its status, in the ladder's folder beside its rungs' folders."""


def with_output(ladder: SpeedrunLadder, rungs: Sequence[Rung], output: str) -> list[Rung]:
    """The rungs writing under ``<output>/<ladder>/`` instead (``speedrun run --output``)."""
    folder = contract.join(output, ladder.name)
    return [
        Rung(
            rung.name,
            rung.job.model_copy(update={"spec": rung.job.spec.model_copy(update={"output": folder})}),
        )
        for rung in rungs
    ]


def ladder_folder(ladder: SpeedrunLadder, rungs: Sequence[Rung]) -> str:
    return rungs[0].job.spec.output or contract.join(".", ladder.name)


def finished(rung: Rung) -> Results | None:
    """The rung's results if it has run to the end already, else None."""
    url = contract.OutputLayout(output=rung.job.spec.output or "", job=rung.job.name).results
    try:
        return results_from_json(read_text(url), url)
    except (OSError, ValueError):
        return None


def run(
    ladder: SpeedrunLadder,
    rungs: Sequence[Rung],
    train: Callable[[Rung], Results],
    report: Callable[[SpeedrunLadderStatus], None],
) -> SpeedrunLadderStatus:
    """Train each unfinished rung in order with ``train``, reporting the ladder's status after each; the
    final status is written to ``<ladder folder>/speedrun_ladder.yaml`` and returned."""
    children: dict[str, decider.Child | None] = {rung.job.name: None for rung in rungs}
    status = SpeedrunLadderStatus()
    for rung in rungs:
        results = finished(rung) or train(rung)
        done = SpeedrunJobStatus(phase=Phase.SUCCEEDED, results=results)
        children[rung.job.name] = decider.Child(status=done, suspended=False)
        status = decider.decide(ladder, rungs, status, children, generation=1, now=now_rfc3339()).status
        report(status)
    write_text_atomic(contract.join(ladder_folder(ladder, rungs), STATUS_FILE), _document(ladder, status))
    return status


def _document(ladder: SpeedrunLadder, status: SpeedrunLadderStatus) -> str:
    manifest: dict[str, Any] = {
        "apiVersion": ladder.api_version,
        "kind": ladder.kind,
        "metadata": {"name": ladder.name},
        "spec": ladder.spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
        "status": status.model_dump(mode="json", exclude_none=True),
    }
    return yaml.safe_dump(manifest, sort_keys=False)
