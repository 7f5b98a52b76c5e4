"""Marin's leaderboard data: one ``runs.json`` entry per results file under a root, and only sound ones.

The entry is the shape of ``data/runs.json`` in marin-community/speedrun, key for key and in that order:
run_name is the run's folder relative to the root (``group/130m``), results_filepath that folder as the root
was named (``experiments/speedrun/group/130m`` for the root ``experiments/speedrun``), and the numbers come
from run_info as Marin's generator (``generate_runs.py``) takes them: wandb_link from wandb_run_link, the bpb
from ``eval/paloma/c4_en/bpb``, a null model_size, training time or hardware FLOPs as 0.

Where the generator has a rule we keep it: a document that is one ``{"run_info": ...}`` without ``runs``
counts as one run, and a folder named ``hello_world_gpu_speedrun`` (the tutorial) is skipped. Where it has
none, a file that would break the site is left out with one line naming the file and the key: a bpb that is
missing, null, NaN, infinite or not above 0 (the site's JSON.parse refuses NaN, and ranks a null first); any
other number that is not finite or is negative; a file holding several runs (they would share one run name);
a run already found in another folder (the same W&B run, or the same run_info); text that is not JSON or
not Marin's shape.
"""

from __future__ import annotations

import json
import math
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import fsspec

from speedrun_operator.contract import RESULTS_FILE
from speedrun_operator.runinfo.keys import C4_EN_BPB
from speedrun_operator.submissions.consistency import Problem, show

GENERATOR_EXCLUDED = frozenset({"hello_world_gpu_speedrun"})
"""Run folders Marin's generator leaves off the leaderboard."""


class RunsJsonAuthor(TypedDict):
    name: str
    affiliation: str | None
    url: str | None


class RunsJsonEntry(TypedDict):
    run_name: str
    results_filepath: str
    author: RunsJsonAuthor
    model_size: int
    training_hardware_flops: float
    training_time: float
    model_flops: float
    eval_paloma_c4_en_bpb: float | None
    wandb_link: str | None
    run_completion_timestamp: str | None
    description: str


@dataclass(frozen=True)
class Collected:
    entries: list[RunsJsonEntry]
    left_out: list[str] = field(default_factory=list)
    """One line per results file (or runs.json entry) left out because it is unsound: file, key, why."""
    skipped: list[str] = field(default_factory=list)
    """One line per run folder left out by the generator's own rule (not an error)."""


def collect(root: str) -> Collected:
    """Entries for every sound ``speedrun_results.json`` under ``root`` (a URL or path), by run name."""
    fs, base = fsspec.core.url_to_fs(root)
    base = base.rstrip("/")
    shown_root = root.rstrip("/")
    entries: list[RunsJsonEntry] = []
    left_out: list[str] = []
    skipped: list[str] = []
    seen: dict[str, str] = {}
    for path in sorted(fs.glob(f"{base}/**/{RESULTS_FILE}")):
        run_name = posixpath.relpath(posixpath.dirname(path), base)
        shown = f"{shown_root if run_name == '.' else f'{shown_root}/{run_name}'}/{RESULTS_FILE}"
        folder = shown.rpartition("/")[0]
        if posixpath.basename(posixpath.dirname(path)) in GENERATOR_EXCLUDED:
            skipped.append(f"{shown}: skipped, as Marin's generator skips the tutorial run")
            continue
        try:
            text = fs.cat_file(path).decode()
        except (OSError, UnicodeDecodeError) as exc:
            left_out.append(f"{shown}: (file): cannot read: {exc}; left out")
            continue
        info, problems = _one_run_info(text)
        entry = None
        if info is not None:
            entry, problems = entry_from_run_info(info, run_name, folder)
            earlier = next(((key, seen[value]) for key, value in _identities(info) if value in seen), None)
            if entry is not None and earlier is not None:
                problems = [Problem(earlier[0], f"the run already at {earlier[1]}", "each run in one folder")]
        if entry is None or problems or info is None:
            left_out.extend(f"{shown}: {problem}; left out" for problem in problems)
            continue
        seen.update((value, shown) for _, value in _identities(info))
        entries.append(entry)
    return Collected(sorted(entries, key=lambda entry: entry["run_name"]), left_out, skipped)


def from_runs_json(text: str, where: str) -> Collected:
    """The sound entries of a runs.json document (the site's own data), each checked as a results file is."""
    try:
        document: Any = json.loads(text)
    except ValueError as exc:
        return Collected([], [f"{where}: (file): found text that is not JSON ({exc}), expected a JSON list"])
    if not isinstance(document, list):
        return Collected([], [f"{where}: (file): found {type(document).__name__}, expected a list of runs"])
    entries: list[RunsJsonEntry] = []
    left_out: list[str] = []
    for index, item in enumerate(document):
        entry, problems = _entry_from_runs_json(item)
        if entry is None:
            left_out.extend(f"{where}: [{index}].{problem}; left out" for problem in problems)
        else:
            entries.append(entry)
    return Collected(entries, left_out)


def to_json(entries: list[RunsJsonEntry]) -> str:
    """As Marin writes ``runs.json``: a list, indent 2, keys in entry order; strict JSON (no NaN)."""
    return json.dumps(entries, indent=2, allow_nan=False) + "\n"


def _one_run_info(text: str) -> tuple[Mapping[str, Any] | None, list[Problem]]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        return None, [Problem("(file)", f"text that is not JSON ({exc})", "a JSON document")]
    if not isinstance(document, dict):
        return None, [Problem("(file)", show(document)[:60], 'an object: {"runs": [{"run_info": {...}}]}')]
    runs = document.get("runs", [document])
    if not isinstance(runs, list) or not runs:
        return None, [Problem("runs", show(runs), 'a non-empty list: {"runs": [{"run_info": {...}}]}')]
    if len(runs) > 1:
        return None, [
            Problem("runs", f"{len(runs)} runs", "one run per results file (each run in a folder of its own)")
        ]
    info = runs[0].get("run_info") if isinstance(runs[0], dict) else None
    if not isinstance(info, dict):
        return None, [Problem("runs[0].run_info", show(info), "an object")]
    return info, []


def entry_from_run_info(
    info: Mapping[str, Any], run_name: str, results_filepath: str
) -> tuple[RunsJsonEntry | None, list[Problem]]:
    """The runs.json entry of one run_info, or None and every problem that keeps it off the board."""
    check = _Values(info, "run_info.")
    author = check.author("author")
    description = check.text("description")
    bpb = check.bpb(C4_EN_BPB)
    model_size = check.count("model_size")
    hardware = check.amount("training_hardware_flops", null_is_zero=True)
    time = check.amount("training_time", null_is_zero=True)
    model_flops = check.amount("model_flops", null_is_zero=False)
    wandb = check.text("wandb_run_link", required=False, nullable=True)
    finished = check.text("run_completion_timestamp", required=False, nullable=True)
    if check.problems:
        return None, check.problems
    assert author is not None and description is not None and bpb is not None and model_size is not None
    assert hardware is not None and time is not None and model_flops is not None
    return RunsJsonEntry(
        run_name=run_name,
        results_filepath=results_filepath,
        author=author,
        model_size=model_size,
        training_hardware_flops=hardware,
        training_time=time,
        model_flops=model_flops,
        eval_paloma_c4_en_bpb=bpb,
        wandb_link=wandb,
        run_completion_timestamp=finished,
        description=description,
    ), []


def _entry_from_runs_json(item: Any) -> tuple[RunsJsonEntry | None, list[Problem]]:
    if not isinstance(item, dict):
        return None, [Problem("(entry)", show(item)[:60], "an object")]
    check = _Values(item, "")
    run_name = check.text("run_name")
    results_filepath = check.text("results_filepath")
    info = {
        **item,
        C4_EN_BPB: item.get("eval_paloma_c4_en_bpb"),
        "wandb_run_link": item.get("wandb_link"),
    }
    if "eval_paloma_c4_en_bpb" not in item:
        del info[C4_EN_BPB]
    entry, problems = entry_from_run_info(info, run_name or "", results_filepath or "")
    problems = check.problems + [
        Problem(
            p.key.removeprefix("run_info.").replace(C4_EN_BPB, "eval_paloma_c4_en_bpb"), p.found, p.expected
        )
        for p in problems
    ]
    return (entry if not problems else None), problems


def _identities(info: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What makes two results files the same run: the same W&B run, or the same run_info."""
    found = [("run_info", json.dumps(info, sort_keys=True, default=str))]
    link = info.get("wandb_run_link")
    if isinstance(link, str) and link:
        found.insert(0, ("run_info.wandb_run_link", link))
    return found


class _Values:
    """Reads the keys of one run, collecting a Problem for each value the site could not show."""

    def __init__(self, values: Mapping[str, Any], prefix: str) -> None:
        self.values = values
        self.prefix = prefix
        self.problems: list[Problem] = []

    def _fail(self, key: str, found: str, expected: str) -> None:
        self.problems.append(Problem(self.prefix + key, found, expected))

    def _get(self, key: str) -> tuple[bool, Any]:
        if key not in self.values:
            self._fail(key, "no such key", "a key Marin results files have")
            return False, None
        return True, self.values[key]

    def text(self, key: str, required: bool = True, nullable: bool = False) -> str | None:
        if not required and key not in self.values:
            return None
        present, value = self._get(key)
        if not present:
            return None
        if isinstance(value, str) or (nullable and value is None):
            return value
        self._fail(key, show(value), "a string" + (" or null" if nullable else ""))
        return None

    def bpb(self, key: str) -> float | None:
        present, value = self._get(key)
        if not present:
            return None
        if value is None:
            self._fail(key, "null", "the run's C4-EN bpb: evaluate on paloma/c4_en to rank")
        elif not _is_number(value) or not math.isfinite(value) or value <= 0:
            self._fail(key, show(value), "a finite number > 0")
        else:
            return float(value)
        return None

    def amount(self, key: str, null_is_zero: bool) -> float | None:
        present, value = self._get(key)
        if not present:
            return None
        if value is None and null_is_zero:
            return 0.0
        if _is_number(value) and math.isfinite(value) and value >= 0:
            return float(value)
        self._fail(key, show(value), "a finite number >= 0" + (" or null" if null_is_zero else ""))
        return None

    def count(self, key: str) -> int | None:
        present, value = self._get(key)
        if not present:
            return None
        if value is None:
            return 0
        if _is_number(value) and math.isfinite(value) and value >= 0 and float(value).is_integer():
            return int(value)
        self._fail(key, show(value), "a whole number >= 0 or null")
        return None

    def author(self, key: str) -> RunsJsonAuthor | None:
        present, value = self._get(key)
        if not present:
            return None
        if not isinstance(value, dict):
            self._fail(key, show(value), "an object: name, affiliation, url")
            return None
        inner = _Values(value, f"{self.prefix}{key}.")
        name = inner.text("name")
        affiliation = inner.text("affiliation", nullable=True)
        url = inner.text("url", required=False, nullable=True)
        self.problems.extend(inner.problems)
        if inner.problems or name is None:
            return None
        return RunsJsonAuthor(name=name, affiliation=affiliation, url=url)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
