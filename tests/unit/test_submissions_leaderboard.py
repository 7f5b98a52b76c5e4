"""`speedrun leaderboard PREFIX|DIR` builds the entries of Marin's runs.json from results files, key for key,
and prints the site's boards; `--json` prints the boards with the entries, `--runs-json` writes runs.json and
`--html` a static page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import fsspec
import pytest

from fixtures.submissions import finished_run, model_flops, speedrun
from fixtures.trainer import JobFactory
from speedrun_operator.runinfo import compute_run_info
from speedrun_operator.submissions.power_law import TARGET_FLOPS

pytestmark = pytest.mark.unit

# Transcribed from data/runs.json in marin-community/speedrun at dd1d1c170c7541ca98e06f8f566f50fb1f5cc38f
# ("automated update- leaderboard data", 2025-12-21): its first entry. All 96 entries there have these keys
# in this order, and these value types.
MARIN_RUNS_JSON_SAMPLE: dict[str, Any] = {
    "run_name": "adamc_llama_scaling/130m",
    "results_filepath": "experiments/speedrun/adamc_llama_scaling/130m",
    "author": {"name": "William Held", "affiliation": "Georgia Tech", "url": "https://WilliamHeld.com"},
    "model_size": 154147328,
    "training_hardware_flops": 8.260351287899738e18,
    "training_time": 1124.775502164997,
    "model_flops": 1.777337490915459e18,
    "eval_paloma_c4_en_bpb": 1.186086654663086,
    "wandb_link": "https://wandb.ai/marin-community/marin/runs/llama_130m_adamc_cos_4096-55946b",
    "run_completion_timestamp": "2025-06-28 06:42:45 UTC",
    "description": "130M parameter model trained with the AdamC optimizer.",
}

SCALING_STEPS = (10, 20, 40, 80)
A, B, C = 40.0, 0.2, 0.9
"""The law the 'scaling' group's bpb follows against model FLOPs."""


def law(flops: float) -> float:
    return A * float(flops ** (-B)) + C


def link(name: str) -> str:
    return f"https://wandb.ai/marin-community/speedrun/runs/{name}-abc123"


@pytest.fixture
def speedrun_root(tiny_job: JobFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Marin-style repository in the working directory: experiments/speedrun/ holds a scaling group of four
    runs whose bpb follows ``law``, a pair of runs and a run at the top level."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "experiments" / "speedrun"
    for steps in SCALING_STEPS:
        job = tiny_job(name=f"s{steps}", train={"steps": steps})
        finished_run(root / "scaling", job, bpb=law(model_flops(job)), wandb_run_link=link(job.name))
    finished_run(root / "pair", tiny_job(name="p1"), bpb=1.60, wandb_run_link=link("p1"))
    finished_run(root / "pair", tiny_job(name="p2", train={"steps": 40}), bpb=1.55, wandb_run_link=link("p2"))
    finished_run(root, tiny_job(name="solo"), bpb=1.45, wandb_run_link=None)
    return root


def entries_of(*args: str) -> list[dict[str, Any]]:
    result = speedrun("leaderboard", *args, "--json")
    assert result.returncode == 0, result.stderr
    entries: list[dict[str, Any]] = json.loads(result.stdout)["runs"]
    return entries


def test_entries_have_exactly_the_keys_and_value_types_of_marins_runs_json(speedrun_root: Path) -> None:
    entries = entries_of("experiments/speedrun")

    assert len(entries) == 7
    for entry in entries:
        assert list(entry) == list(MARIN_RUNS_JSON_SAMPLE)
        assert list(entry["author"]) == list(MARIN_RUNS_JSON_SAMPLE["author"])
    complete = [e for e in entries if e["wandb_link"] is not None]
    assert len(complete) == 6
    for entry in complete:
        assert {key: type(value) for key, value in entry.items()} == {
            key: type(value) for key, value in MARIN_RUNS_JSON_SAMPLE.items()
        }


def test_run_names_and_paths_are_relative_to_the_root_as_marins_generator_makes_them(
    speedrun_root: Path,
) -> None:
    entries = entries_of("experiments/speedrun")

    assert [entry["run_name"] for entry in entries] == [
        "pair/p1",
        "pair/p2",
        "scaling/s10",
        "scaling/s20",
        "scaling/s40",
        "scaling/s80",
        "solo",
    ]
    assert {entry["results_filepath"] for entry in entries} == {
        f"experiments/speedrun/{entry['run_name']}" for entry in entries
    }


def test_entry_values_come_from_run_info_as_marin_reads_them(
    tiny_job: JobFactory, speedrun_root: Path
) -> None:
    by_name = {entry["run_name"]: entry for entry in entries_of(str(speedrun_root))}
    s20 = tiny_job(name="s20", train={"steps": 20})
    info = compute_run_info(s20.spec)

    assert by_name["scaling/s20"] == {
        "run_name": "scaling/s20",
        "results_filepath": f"{speedrun_root}/scaling/s20",
        "author": {"name": "Test Author", "affiliation": "Test Lab", "url": "https://example.org/test"},
        "model_size": info.parameters,
        "training_hardware_flops": 20 * 0.5 * 1 * 1.0e11,
        "training_time": 20 * 0.5,
        "model_flops": info.model_flops,
        "eval_paloma_c4_en_bpb": law(info.model_flops),
        "wandb_link": link("s20"),
        "run_completion_timestamp": "2026-11-25 21:19:03 UTC",
        "description": "A tiny Llama for the trainer's tests.",
    }
    assert by_name["solo"]["wandb_link"] is None


def test_runs_json_is_written_as_marin_writes_it(speedrun_root: Path) -> None:
    runs_json = speedrun_root.parent / "runs.json"
    result = speedrun("leaderboard", "experiments/speedrun", "--runs-json", str(runs_json))
    assert result.returncode == 0, result.stderr
    text = runs_json.read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
    assert json.loads(text) == entries_of("experiments/speedrun")


def test_a_prefix_in_object_storage_gives_the_same_entries(speedrun_root: Path) -> None:
    memory = fsspec.filesystem("memory")
    for path in speedrun_root.rglob("speedrun_results.json"):
        memory.pipe(f"/leaderboard-test/{path.relative_to(speedrun_root)}", path.read_bytes())
    try:
        remote = entries_of("memory://leaderboard-test")
    finally:
        memory.rm("/leaderboard-test", recursive=True)

    local = entries_of("experiments/speedrun")
    assert [entry["results_filepath"] for entry in remote] == [
        f"memory://leaderboard-test/{entry['run_name']}" for entry in local
    ]
    assert [{**e, "results_filepath": ""} for e in remote] == [{**e, "results_filepath": ""} for e in local]


def test_the_tables_show_each_board_of_the_site(speedrun_root: Path) -> None:
    result = speedrun("leaderboard", "experiments/speedrun")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    ranked = [cells[2] for line in lines if len(cells := [c.strip() for c in line.split("│")]) == 10]
    assert ranked[:7] == [
        "scaling/s80",
        "scaling/s40",
        "solo",
        "scaling/s20",
        "pair/p2",
        "scaling/s10",
        "pair/p1",
    ]
    titles = [line for line in lines if line.startswith(("All Runs", "llama ", "Scaling"))]
    assert titles[0].startswith("All Runs") and len(titles) == 7  # 4 target tracks, both scaling tables
    # These tiny runs used far less than 3e20 hardware FLOPs: the site lists no group, we show them apart.
    scaling_row = next(line for line in lines if "│ scaling " in line)
    cells = [cell.strip() for cell in scaling_row.split("│")]
    assert cells[1] == "-"
    # Our converged fit recovers the law; the site's solver, stopped by its limits, lands near it.
    assert cells[9] == f"{law(TARGET_FLOPS):.3f}"
    assert float(cells[8]) == pytest.approx(law(TARGET_FLOPS), abs=0.02)
    pair_row = next(line for line in lines if "│ pair " in line)
    assert "no fit" in pair_row


def test_the_scaling_bpbs_are_where_the_ranking_expects_them(tiny_job: JobFactory) -> None:
    """More steps, more model FLOPs, lower bpb: 10 steps 1.576, 20 steps 1.488, 40 steps 1.412, 80 steps
    1.346, with solo (1.45) and the pair (1.55, 1.60) between them."""
    bpbs = [law(model_flops(tiny_job(name="x", train={"steps": steps}))) for steps in SCALING_STEPS]
    assert bpbs == pytest.approx([1.5758, 1.4883, 1.4122, 1.3459], abs=1e-4)


def test_an_empty_root_is_an_error(tmp_path: Path) -> None:
    result = speedrun("leaderboard", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"{tmp_path}: no speedrun_results.json under it"


def test_html_writes_one_self_contained_page_with_the_chart_and_every_board(speedrun_root: Path) -> None:
    page = speedrun_root.parent / "leaderboard.html"

    result = speedrun("leaderboard", "experiments/speedrun", "--html", str(page))

    assert result.returncode == 0, result.stderr
    html = page.read_text()
    assert html.startswith("<!doctype html>")
    # One fitted group ('scaling'): the site's fit solid, our converged fit dashed.
    assert html.count("<svg") == 1 and html.count("<polyline") == 2 and html.count("stroke-dasharray") == 1
    assert html.count("<circle") == 7 + 3  # runs with a bpb, then the legend: scaling, pair, other runs
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<script" not in html
    assert "scaling/s80" in html and f"{law(TARGET_FLOPS):.3f}" in html
    for heading in ("All Runs", "llama 30m (1.53 BPB)", "Scaling", "Groups the site does not list"):
        assert heading in html


MARIN = Path(__file__).parents[1] / "data" / "leaderboard" / "marin"
SITE = Path(__file__).parents[1] / "data" / "leaderboard" / "site"


def test_real_results_files_make_the_sites_runs_json_entries_key_for_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Marin's own results files, under experiments/speedrun/ as in Marin's tree, give exactly the entries the
    site's data/runs.json holds for those runs."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(MARIN, tmp_path / "experiments" / "speedrun")
    site = {entry["run_name"]: entry for entry in json.loads((SITE / "runs.json").read_text())}

    entries = entries_of("experiments/speedrun")

    assert len(entries) == len(list(MARIN.rglob("speedrun_results.json"))) >= 17
    for entry in entries:
        assert entry == site[entry["run_name"]]
        assert list(entry) == list(site[entry["run_name"]])


THREE_LADDERS = ("adamc_llama_scaling", "muon_llama_scaling", "adamw_llama_scaling", "muon_qwen3_scaling")
"""Marin's three 4-size Llama ladders, and a lone Qwen3 run of another group."""


def test_real_ladders_get_the_sites_scaling_numbers_and_order(tmp_path: Path) -> None:
    for group in THREE_LADDERS:
        shutil.copytree(MARIN / group, tmp_path / group)
    result = speedrun("leaderboard", str(tmp_path), "--json")

    assert result.returncode == 0, result.stderr
    scaling = json.loads(result.stdout)["boards"][-1]
    assert [(g["name"], round(g["site_fit"]["projected_bpb"], 3)) for g in scaling["groups"]] == [
        ("adamc_llama_scaling", 0.835),
        ("muon_llama_scaling", 0.836),
        ("adamw_llama_scaling", 0.841),
    ]
    assert [round(g["converged_fit"]["projected_bpb"], 3) for g in scaling["groups"]] == [0.854, 0.853, 0.868]
    # One 130m Qwen3 run is a group too small to fit, and never reached 3e20 hardware FLOPs: not listed.
    assert [g["name"] for g in scaling["unlisted_groups"]] == ["muon_qwen3_scaling"]
