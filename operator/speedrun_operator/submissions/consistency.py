"""Does a ``speedrun_results.json`` say what its SpeedrunJob config implies?

Parameters, tokens and model FLOPs are recomputed from the config with the same arithmetic the trainer used
(:mod:`speedrun_operator.runinfo`); integers must match exactly, floats to a relative 1e-9 (they are written
and read back as JSON, so an honest file matches to the last bit). Hardware FLOPs must equal the recorded
training time x the config's chips x their peak FLOP/s. Training time and the eval bpb cannot be recomputed;
they only have to be well-formed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from speedrun_operator.api import SpeedrunJob
from speedrun_operator.runinfo import ModelCounts, compute_run_info
from speedrun_operator.runinfo.keys import C4_EN_BPB, REQUIRED_RUN_INFO_KEYS

REL_TOL = 1e-9


@dataclass(frozen=True)
class Problem:
    """One inconsistency: the key (a path into the JSON), what the file holds, and what it should hold."""

    key: str
    found: str
    expected: str

    def __str__(self) -> str:
        return f"{self.key}: found {self.found}, expected {self.expected}"


def show(value: Any) -> str:
    """A value as JSON spells it: the notation of the file being checked."""
    return json.dumps(value)


def run_infos(text: str) -> tuple[list[Mapping[str, Any]], list[Problem]]:
    """The ``run_info`` of each run in a results document, or the problems that stop it being one."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        return [], [Problem("(file)", f"text that is not JSON ({exc})", "a JSON document")]
    runs = document.get("runs") if isinstance(document, dict) else None
    if not isinstance(runs, list) or not runs:
        return [], [Problem("runs", show(runs), 'a non-empty list: {"runs": [{"run_info": {...}}]}')]
    infos: list[Mapping[str, Any]] = []
    problems: list[Problem] = []
    for index, run in enumerate(runs):
        info = run.get("run_info") if isinstance(run, dict) else None
        if isinstance(info, dict):
            infos.append(info)
        else:
            problems.append(Problem(f"runs[{index}].run_info", show(info), "an object"))
    return infos, problems


def check_results(text: str, job: SpeedrunJob) -> list[Problem]:
    """Every problem with a results document written for ``job``, for each of its runs."""
    infos, problems = run_infos(text)
    for index, info in enumerate(infos):
        problems.extend(check_run_info(info, job, prefix=f"runs[{index}].run_info."))
    return problems


def check_run_info(info: Mapping[str, Any], job: SpeedrunJob, prefix: str = "") -> list[Problem]:
    checker = _Checker(info, prefix)
    for key in REQUIRED_RUN_INFO_KEYS:
        checker.present(key)
    spec = job.spec
    counts = _custom_counts(info, checker) if spec.model.is_custom else None
    if spec.model.is_custom and counts is None:
        return checker.problems
    expected = compute_run_info(spec, counts)
    chips = spec.resources.num_chips
    peak = spec.resources.peak_flops_per_device

    checker.equal("description", spec.description)
    author = info.get("author")
    if isinstance(author, dict):
        author_checker = _Checker(author, f"{prefix}author.")
        author_checker.present("name")
        author_checker.present("affiliation")
        for field in ("name", "affiliation", "url"):
            author_checker.equal(field, getattr(spec.author, field))
        checker.problems.extend(author_checker.problems)
    elif "author" in info:
        checker.problems.append(Problem(prefix + "author", show(author), "an object: name, affiliation, url"))

    checker.integer("model_size", expected.parameters)
    checker.integer("total_tokens", expected.total_tokens)
    checker.close("model_flops", expected.model_flops, "3 x FLOPs per token x total tokens")
    # Keys of later Marin versions (and vocab_size, ours): checked when present.
    checker.close("model_flops_per_token", expected.flops_per_token)
    checker.integer("num_chips", chips)
    checker.close("device_flops", peak)
    checker.integer("vocab_size", expected.vocab_size)

    training_time = checker.number("training_time")
    if training_time is not None:
        checker.close(
            "training_hardware_flops",
            training_time * chips * peak,
            f"training_time {show(training_time)} x {chips} chips x {peak:g} FLOP/s",
        )
    checker.number(C4_EN_BPB, positive=True, nullable=True)
    checker.string("run_completion_timestamp")
    checker.string("wandb_run_link", nullable=True)
    return checker.problems


def _custom_counts(info: Mapping[str, Any], checker: _Checker) -> ModelCounts | None:
    """A custom model's counts are its code's, which the results record: the rest is checked against them.
    Its code's digest must be recorded too."""
    code = info.get("model_code")
    digest = code.get("digest") if isinstance(code, dict) else None
    if not (isinstance(digest, str) and digest.startswith("sha256:")):
        checker.problems.append(
            Problem(checker.prefix + "model_code.digest", show(digest), "the code's sha256:<hex> digest")
        )
    parameters: Any = info.get("model_size")
    per_token: Any = info.get("model_flops_per_token")
    if not (_is_int(parameters) and _is_number(per_token)):
        checker.problems.append(
            Problem(
                checker.prefix + "model_flops_per_token",
                show(per_token),
                "a number: a custom model's FLOPs per token, as its code counts them",
            )
        )
        return None
    return ModelCounts(parameters=int(parameters), flops_per_token=float(per_token))


class _Checker:
    """Checks keys of one JSON object, collecting a Problem for each mismatch. A missing key is reported by
    ``present`` only; the other checks skip it."""

    def __init__(self, values: Mapping[str, Any], prefix: str) -> None:
        self.values = values
        self.prefix = prefix
        self.problems: list[Problem] = []

    def _add(self, key: str, found: Any, expected: str) -> None:
        self.problems.append(Problem(self.prefix + key, show(found), expected))

    def present(self, key: str) -> None:
        if key not in self.values:
            self.problems.append(Problem(self.prefix + key, "no such key", "a key Marin results files have"))

    def equal(self, key: str, expected: Any) -> None:
        if key in self.values and self.values[key] != expected:
            self._add(key, self.values[key], f"{show(expected)} (from the config)")

    def integer(self, key: str, expected: int) -> None:
        if key not in self.values:
            return
        value = self.values[key]
        if not _is_int(value) or value != expected:
            self._add(key, value, f"{show(expected)} (recomputed from the config)")

    def close(self, key: str, expected: float, how: str = "") -> None:
        if key not in self.values:
            return
        value = self.values[key]
        if not _is_number(value) or not math.isclose(value, expected, rel_tol=REL_TOL):
            basis = f" = {how}" if how else ""
            self._add(key, value, f"{expected!r}{basis} (recomputed from the config)")

    def number(self, key: str, positive: bool = False, nullable: bool = False) -> float | None:
        """The value if it is a finite number >= 0 (> 0 when ``positive``); null passes when ``nullable``."""
        if key not in self.values or (nullable and self.values[key] is None):
            return None
        value = self.values[key]
        if _is_number(value) and math.isfinite(value) and (value > 0 if positive else value >= 0):
            return float(value)
        bound = "> 0" if positive else ">= 0"
        self._add(key, value, f"a finite number {bound}" + (" or null" if nullable else ""))
        return None

    def string(self, key: str, nullable: bool = False) -> None:
        if key not in self.values:
            return
        value = self.values[key]
        if not (isinstance(value, str) or (nullable and value is None)):
            self._add(key, value, "a string" + (" or null" if nullable else ""))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
