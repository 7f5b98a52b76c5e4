"""Results as the trainer wrote them (Marin's speedrun_results.json) -> status.results. Pure functions."""

from __future__ import annotations

import json
from typing import Any

from speedrun_operator.api import ConditionType, Results, SpeedrunJobStatus
from speedrun_operator.status.conditions import set_condition
from speedrun_operator.status.decision import Decision, Failure, Note, fail


def results_from_json(text: str, url: str) -> Results:
    """Read the last run of a results file; raises ValueError when it is not Marin's format."""
    try:
        run_info: dict[str, Any] = json.loads(text)["runs"][-1]["run_info"]
        return Results.from_run_info(run_info, url)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"{url} is not a speedrun_results.json ({exc!r})") from None


def published(current: SpeedrunJobStatus, results: Results, *, now: str) -> Decision:
    """A succeeded run's results were read back: they go onto the status, and the message says the bpb."""
    status = current.model_copy(deep=True)
    status.results = results
    measured = (
        f"eval bpb {results.eval_bpb_display} on {results.eval_set}"
        if results.eval_bpb_display
        else "no eval bpb recorded"
    )
    status.message = f"{measured}; results at {results.results_url}"
    status.conditions = set_condition(
        status.conditions,
        ConditionType.RESULTS_PUBLISHED,
        "True",
        "ResultsPublished",
        f"results at {results.results_url}",
        now=now,
        generation=status.observed_generation,
    )
    return Decision(status, notes=(Note("Normal", "ResultsPublished", status.message),))


def trainer_failed(current: SpeedrunJobStatus, text: str, url: str, *, now: str) -> Decision:
    """The trainer could not train at all and said why (``contract.OutputLayout.failure``): Failed for good,
    once, with its message (a broken model's file, line and error)."""
    try:
        record = json.loads(text)
        failure = Failure(str(record["reason"]), str(record["message"]))
    except (ValueError, KeyError, TypeError) as exc:
        failure = Failure("TrainerFailed", f"{url} is not a failure record ({exc!r})")
    status = current.model_copy(deep=True)
    fail(status, failure, generation=status.observed_generation, now=now)
    return Decision(status, notes=(Note("Warning", failure.reason, failure.message),))


def unreadable(current: SpeedrunJobStatus, url: str, error: Exception, *, now: str) -> Decision:
    """The results are not there (yet): say so, and let the next pass try again."""
    status = current.model_copy(deep=True)
    status.conditions = set_condition(
        status.conditions,
        ConditionType.RESULTS_PUBLISHED,
        "False",
        "ResultsNotFound",
        f"cannot read {url} yet ({type(error).__name__}: {error}); retrying",
        now=now,
        generation=status.observed_generation,
    )
    return Decision(status)
