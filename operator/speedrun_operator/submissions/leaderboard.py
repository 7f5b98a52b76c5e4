"""Marin's leaderboard data: one ``runs.json`` entry per run in every results file under a root.

The entry is the shape of ``data/runs.json`` in marin-community/speedrun, key for key and in that order:
run_name is the run's folder relative to the root (``group/130m``), results_filepath that folder as the root
was named (``experiments/speedrun/group/130m`` for the root ``experiments/speedrun``), and the numbers come
from run_info as Marin's generator took them (wandb_link from wandb_run_link; the bpb from
``eval/paloma/c4_en/bpb``, null when the run was not evaluated on Paloma's c4_en).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

import fsspec

from speedrun_operator.contract import RESULTS_FILE
from speedrun_operator.runinfo.keys import C4_EN_BPB
from speedrun_operator.submissions.consistency import Problem, run_infos


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
    problems: list[str]
    """One line per results file that could not be read into entries (those files are left out)."""


def collect(root: str) -> Collected:
    """Entries for every ``speedrun_results.json`` under ``root`` (a URL or path), sorted by run name."""
    fs, base = fsspec.core.url_to_fs(root)
    base = base.rstrip("/")
    entries: list[RunsJsonEntry] = []
    problems: list[str] = []
    for path in sorted(fs.glob(f"{base}/**/{RESULTS_FILE}")):
        run_name = posixpath.relpath(posixpath.dirname(path), base)
        shown = root.rstrip("/") if run_name == "." else f"{root.rstrip('/')}/{run_name}"
        try:
            text = fs.cat_file(path).decode()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{shown}/{RESULTS_FILE}: cannot read: {exc}")
            continue
        made, failures = _file_entries(text, run_name, shown)
        problems.extend(f"{shown}/{RESULTS_FILE}: {problem}" for problem in failures)
        entries.extend(made)
    return Collected(entries=sorted(entries, key=lambda entry: entry["run_name"]), problems=problems)


def to_json(entries: list[RunsJsonEntry]) -> str:
    """As Marin writes ``runs.json``: a list, indent 2, keys in entry order."""
    return json.dumps(entries, indent=2) + "\n"


def _file_entries(
    text: str, run_name: str, results_filepath: str
) -> tuple[list[RunsJsonEntry], list[Problem]]:
    """All of a file's entries, or none of them and why."""
    infos, problems = run_infos(text)
    if problems:
        return [], problems
    try:
        return [_entry(info, run_name, results_filepath) for info in infos], []
    except KeyError as exc:
        return [], [Problem(f"run_info.{exc.args[0]}", "no such key", "a key Marin results files have")]
    except (TypeError, ValueError) as exc:
        return [], [Problem("run_info", f"a value of the wrong type ({exc})", "the types Marin writes")]


def _entry(info: Mapping[str, Any], run_name: str, results_filepath: str) -> RunsJsonEntry:
    author = info["author"]
    bpb = info[C4_EN_BPB]
    return RunsJsonEntry(
        run_name=run_name,
        results_filepath=results_filepath,
        author=RunsJsonAuthor(name=author["name"], affiliation=author["affiliation"], url=author.get("url")),
        model_size=int(info["model_size"] or 0),
        training_hardware_flops=float(info["training_hardware_flops"] or 0.0),
        training_time=float(info["training_time"] or 0.0),
        model_flops=float(info["model_flops"]),
        eval_paloma_c4_en_bpb=None if bpb is None else float(bpb),
        wandb_link=info.get("wandb_run_link"),
        run_completion_timestamp=info.get("run_completion_timestamp"),
        description=info["description"],
    )
