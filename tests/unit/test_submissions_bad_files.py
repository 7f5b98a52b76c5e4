"""Nothing bad reaches runs.json: a results file the site could not show is left out of `speedrun leaderboard`
with one line naming the file and the key, the output stays strict JSON, the page never draws an empty chart,
and the exit code is 2 whenever something was left out. The good runs beside it are Marin's real AdamW
ladder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from fixtures.submissions import speedrun

pytestmark = pytest.mark.unit

MARIN = Path(__file__).parents[1] / "data" / "leaderboard" / "marin"
LADDER = MARIN / "adamw_llama_scaling"
BPB = "eval/paloma/c4_en/bpb"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """experiments/speedrun/ holding Marin's four adamw_llama_scaling results, in the working directory."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(LADDER, tmp_path / "experiments" / "speedrun" / "adamw_llama_scaling")
    return tmp_path / "experiments" / "speedrun"


def real_run_info() -> dict[str, Any]:
    info: dict[str, Any] = json.loads((LADDER / "130m" / "speedrun_results.json").read_text())["runs"][0][
        "run_info"
    ]
    return info


def write(root: Path, folder: str, document: Any) -> str:
    path = root / folder / "speedrun_results.json"
    path.parent.mkdir(parents=True)
    path.write_text(document if isinstance(document, str) else json.dumps(document, indent=2))
    return f"experiments/speedrun/{folder}/speedrun_results.json"


def bad_run(**changes: Any) -> dict[str, Any]:
    info = {**real_run_info(), "wandb_run_link": "https://wandb.ai/x/y/runs/bad"}
    for key, value in changes.items():
        key = BPB if key == "bpb" else key
        if value is _MISSING:
            del info[key]
        else:
            info[key] = value
    return {"runs": [{"run_info": info}]}


_MISSING = object()


def strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def leaderboard_json() -> tuple[int, dict[str, Any], list[str]]:
    result = speedrun("leaderboard", "experiments/speedrun", "--json")
    return result.returncode, strict(result.stdout), result.stderr.strip().splitlines()


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"bpb": float("nan")}, "run_info.eval/paloma/c4_en/bpb: found NaN, expected a finite number > 0"),
        (
            {"bpb": float("inf")},
            "run_info.eval/paloma/c4_en/bpb: found Infinity, expected a finite number > 0",
        ),
        ({"bpb": -1.2}, "run_info.eval/paloma/c4_en/bpb: found -1.2, expected a finite number > 0"),
        ({"bpb": 0}, "run_info.eval/paloma/c4_en/bpb: found 0, expected a finite number > 0"),
        ({"bpb": "1.1"}, 'run_info.eval/paloma/c4_en/bpb: found "1.1", expected a finite number > 0'),
        (
            {"bpb": None},
            "run_info.eval/paloma/c4_en/bpb: found null, expected the run's C4-EN bpb: evaluate on "
            "paloma/c4_en to rank",
        ),
        (
            {"bpb": _MISSING},
            "run_info.eval/paloma/c4_en/bpb: found no such key, expected a key Marin results",
        ),
        ({"model_flops": float("nan")}, "run_info.model_flops: found NaN, expected a finite number >= 0"),
        (
            {"training_time": -5.0},
            "run_info.training_time: found -5.0, expected a finite number >= 0 or null",
        ),
        ({"model_size": 1.5}, "run_info.model_size: found 1.5, expected a whole number >= 0 or null"),
        ({"author": "Will"}, 'run_info.author: found "Will", expected an object: name, affiliation, url'),
    ],
    ids=[
        "nan",
        "inf",
        "negative",
        "zero",
        "string",
        "null",
        "missing",
        "flops-nan",
        "time",
        "size",
        "author",
    ],
)
def test_a_bad_value_leaves_the_file_out_with_one_line_naming_file_and_key(
    root: Path, changes: dict[str, Any], line: str
) -> None:
    shown = write(root, "bad", bad_run(**changes))

    code, document, stderr = leaderboard_json()

    assert code == 2
    assert len(stderr) == 1 and stderr[0].startswith(f"{shown}: {line}") and stderr[0].endswith("; left out")
    assert [entry["run_name"] for entry in document["runs"]] == [
        f"adamw_llama_scaling/{size}" for size in ("130m", "1_2b", "300m", "520m")
    ]
    assert document["left_out"] == stderr


def test_a_file_with_several_runs_is_left_out_not_entered_twice_under_one_name(root: Path) -> None:
    two = bad_run()
    two["runs"].append({"run_info": {**real_run_info(), BPB: 0.5}})
    shown = write(root, "two_runs", two)

    code, document, stderr = leaderboard_json()

    assert code == 2
    assert stderr == [
        f"{shown}: runs: found 2 runs, expected one run per results file (each run in a folder of its own); "
        "left out"
    ]
    assert all(entry["run_name"] != "two_runs" for entry in document["runs"])
    assert document["boards"][0]["runs"][0]["run_name"] == "adamw_llama_scaling/1_2b"


def test_the_same_run_found_twice_is_entered_once(root: Path) -> None:
    copy = write(root, "copied/130m", (LADDER / "130m" / "speedrun_results.json").read_text())

    code, document, stderr = leaderboard_json()

    assert code == 2
    assert stderr == [
        f"{copy}: run_info.wandb_run_link: found the run already at "
        "experiments/speedrun/adamw_llama_scaling/130m/speedrun_results.json, expected each run in one "
        "folder; left out"
    ]
    assert len(document["runs"]) == 4


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("{not json", "(file): found text that is not JSON"),
        ("[1, 2]", '(file): found [1, 2], expected an object: {"runs": [{"run_info": {...}}]}'),
        ('{"runs": "all"}', 'runs: found "all", expected a non-empty list'),
        ('{"runs": []}', "runs: found [], expected a non-empty list"),
        ('{"runs": [{"info": {}}]}', "runs[0].run_info: found null, expected an object"),
    ],
    ids=["not-json", "a-list", "runs-a-string", "no-runs", "no-run-info"],
)
def test_a_file_not_in_marins_shape_is_left_out_with_one_line(root: Path, text: str, line: str) -> None:
    shown = write(root, "odd", text)

    code, document, stderr = leaderboard_json()

    assert code == 2 and len(document["runs"]) == 4
    assert len(stderr) == 1 and stderr[0].startswith(f"{shown}: {line}")


def test_a_bare_run_info_document_counts_as_one_run_as_marins_generator_reads_it(root: Path) -> None:
    write(root, "bare", {"run_info": {**real_run_info(), "wandb_run_link": "https://wandb.ai/x/y/runs/bare"}})

    code, document, stderr = leaderboard_json()

    assert (code, stderr) == (0, [])
    assert "bare" in [entry["run_name"] for entry in document["runs"]]


def test_the_tutorial_run_is_skipped_as_marins_generator_skips_it(root: Path) -> None:
    shown = write(root, "hello_world_gpu_speedrun", bad_run())

    code, document, stderr = leaderboard_json()

    assert code == 0
    assert stderr == [f"{shown}: skipped, as Marin's generator skips the tutorial run"]
    assert len(document["runs"]) == 4


def test_nothing_bad_reaches_the_runs_json_file_or_the_page(root: Path) -> None:
    write(root, "nan", bad_run(bpb=float("nan")))
    runs_json, page = root.parent / "runs.json", root.parent / "page.html"

    result = speedrun(
        "leaderboard", "experiments/speedrun", "--runs-json", str(runs_json), "--html", str(page)
    )

    assert result.returncode == 2
    assert len(strict(runs_json.read_text())) == 4
    html = page.read_text()
    assert "NaN" not in html and html.count("<svg") == 1
    assert html.count("<circle") == 4 + 2  # the four runs, then the legend: the ladder and other runs


def test_a_page_with_nothing_to_draw_says_so_instead_of_an_empty_chart(tmp_path: Path) -> None:
    root = tmp_path / "speedrun"
    write(root, "nan", bad_run(bpb=float("nan")))
    page = tmp_path / "page.html"

    result = speedrun("leaderboard", str(root), "--html", str(page))

    assert result.returncode == 2
    html = page.read_text()
    assert "<svg" not in html and "there is nothing to chart" in html


def test_a_runs_json_is_checked_entry_by_entry(tmp_path: Path) -> None:
    site = json.loads((Path(__file__).parents[1] / "data" / "leaderboard" / "site" / "runs.json").read_text())
    site[3]["eval_paloma_c4_en_bpb"] = float("nan")
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(site))

    result = speedrun("leaderboard", str(path), "--json")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"{path}: [3].eval_paloma_c4_en_bpb: found NaN, expected a finite number > 0; left out"
    ]
    assert len(strict(result.stdout)["runs"]) == 95
