"""One reconcile pass of one SpeedrunLadder: its rungs' SpeedrunJobs read from an index, the status decided,
the rungs created within the parallelism, the status written at most once.

Runs against a fake of the ladder's API calls (``reconcile_ladder.LadderCluster``), in memory, with the
four real results of Marin's adamw_llama_scaling as the rungs' outcomes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from speedrun_operator.api import Results
from speedrun_operator.api.ladder import LADDER_KIND
from speedrun_operator.config import OperatorConfig
from speedrun_operator.reconcile import AlreadyExists
from speedrun_operator.reconcile_ladder import LadderContext, reconcile_ladder
from speedrun_operator.submissions.boards import ScalingBoard, build_boards
from speedrun_operator.submissions.leaderboard import collect

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ladders" / "adamw-llama-scaling-v5p-32.yaml"
MARIN = ROOT / "tests" / "data" / "leaderboard" / "marin"
UID = "7a1d0c4e-aaaa-bbbb-cccc-ddddeeeeffff"
OUTPUT = "gs://speedruns/runs"
RUNGS = ("130m", "300m", "520m", "1-2b")
MARIN_FOLDERS = {"130m": "130m", "300m": "300m", "520m": "520m", "1-2b": "1_2b"}


@dataclass
class FakeCluster:
    """The API server as far as a ladder's reconcile reaches it; records every call it takes."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    version: int = 100
    calls: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def get_speedrunjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(f"get {name}")
        return self.jobs.get(name)

    def create_speedrunjob(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        self.calls.append(f"create {name}")
        if name in self.jobs:
            raise AlreadyExists(name)
        self.jobs[name] = {**body, "status": {}}

    def patch_speedrunjob(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(f"patch {name} {json.dumps(patch, sort_keys=True)}")
        self.jobs[name]["spec"].update(patch["spec"])

    def patch_ladder_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"patch status {sorted(status)}")
        merged = {**self.status, **status}
        self.status = {key: value for key, value in merged.items() if value is not None}
        self.version += 1
        return ladder(self.status, self.version)

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    @property
    def writes(self) -> list[str]:
        return [call for call in self.calls if call.startswith("patch status")]

    @property
    def created(self) -> list[str]:
        return [call.split()[1] for call in self.calls if call.startswith("create")]


def ladder(status: dict[str, Any] | None = None, version: int = 100, **spec: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"].update(
        {"namespace": "team-a", "uid": UID, "generation": 1, "resourceVersion": str(version)}
    )
    manifest["spec"].update(spec)
    manifest["status"] = status or {}
    return manifest


def context(cluster: FakeCluster, default_output: str | None = OUTPUT) -> LadderContext:
    return LadderContext(cluster=cluster, config=OperatorConfig(default_output=default_output))


def job_name(rung: str) -> str:
    return f"adamw-llama-scaling-{rung}"


def marin_results(rung: str) -> dict[str, Any]:
    path = MARIN / "adamw_llama_scaling" / MARIN_FOLDERS[rung] / "speedrun_results.json"
    url = f"{OUTPUT}/adamw-llama-scaling/{job_name(rung)}/speedrun_results.json"
    run_info = json.loads(path.read_text())["runs"][0]["run_info"]
    return Results.from_run_info(run_info, url).model_dump(mode="json", exclude_none=True)


def finish(cluster: FakeCluster, rung: str) -> None:
    """The rung's SpeedrunJob succeeded and published Marin's results for that size."""
    cluster.jobs[job_name(rung)]["status"] = {"phase": "Succeeded", "results": marin_results(rung)}


def step(cluster: FakeCluster, **config: Any) -> None:
    """One pass, the rungs from an index that is up to date (the fake's own SpeedrunJobs)."""
    reconcile_ladder(context(cluster, **config), ladder(cluster.status, cluster.version), cluster.jobs.get)


def rung(cluster: FakeCluster, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in cluster.status["rungs"] if r["name"] == name)
    return found


def test_a_new_ladder_creates_as_many_rungs_as_its_parallelism_owned_by_it_in_one_status_write() -> None:
    cluster = FakeCluster()
    step(cluster)
    assert cluster.created == [job_name("130m"), job_name("300m")], "parallelism 2, smallest first"
    assert len(cluster.writes) == 1
    assert (cluster.status["phase"], cluster.status["rungsDone"]) == ("Running", "0/4")
    assert cluster.status["startTime"] and "completionTime" not in cluster.status
    assert [r["phase"] for r in cluster.status["rungs"]] == ["Pending", "Pending", "Waiting", "Waiting"]
    child = cluster.jobs[job_name("130m")]
    (owner,) = child["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (LADDER_KIND, UID, True)
    assert child["spec"]["output"] == f"{OUTPUT}/adamw-llama-scaling", "results land in <output>/<ladder>/"
    assert child["spec"]["train"]["learningRate"] == 0.008 and child["spec"]["train"]["beta2"] == 0.98
    assert child["spec"]["author"]["name"] == "Your Name"
    assert [reason for _, reason, _ in cluster.events] == ["RungsRunning", "RungCreated", "RungCreated"]


def test_a_finished_rung_frees_its_place_for_the_next_and_the_fit_comes_with_the_third() -> None:
    cluster = FakeCluster()
    step(cluster)
    finish(cluster, "130m")
    step(cluster)
    assert cluster.created[-1] == job_name("520m")
    assert rung(cluster, "130m")["evalBpb"] == pytest.approx(1.1862303018569946)
    assert rung(cluster, "130m")["hardwareFlops"] == pytest.approx(8.2648916715783e18)
    assert cluster.status["rungsDone"] == "1/4" and "fit" not in cluster.status
    finish(cluster, "300m")
    step(cluster)
    assert "fit" not in cluster.status and cluster.created[-1] == job_name("1-2b")
    finish(cluster, "520m")
    step(cluster)
    fit = cluster.status["fit"]
    assert fit["points"] == 3 and fit["site"]["projectedBpb"] > 0 and not fit["listed"]
    assert cluster.status["projectedBpb"] == f"{fit['site']['projectedBpb']:.4f}"
    assert ("Normal", "FitUpdated") in [(t, r) for t, r, _ in cluster.events]
    assert len(cluster.created) == 4, "no rung is created twice"


def test_the_finished_ladder_projects_what_speedrun_leaderboard_projects_for_marins_folder() -> None:
    cluster = FakeCluster()
    step(cluster)
    for name in RUNGS:
        if job_name(name) not in cluster.jobs:
            step(cluster)
        finish(cluster, name)
    step(cluster)
    assert (cluster.status["phase"], cluster.status["rungsDone"]) == ("Succeeded", "4/4")
    boards = build_boards(collect(str(MARIN)).entries)
    scaling = next(board for board in boards.boards if isinstance(board, ScalingBoard))
    group = next(g for g in scaling.groups if g.name == "adamw_llama_scaling")
    assert group.site is not None and group.converged is not None
    site, converged = cluster.status["fit"]["site"], cluster.status["fit"]["converged"]
    assert site["projectedBpb"] == group.site_projection
    assert (site["a"], site["b"], site["c"], site["r2"]) == (
        group.site.law.a,
        group.site.law.b,
        group.site.law.c,
        group.site.law.r2,
    )
    assert converged["projectedBpb"] == pytest.approx(group.converged_projection, rel=1e-9)
    assert cluster.status["fit"]["listed"], "the 1.2b rung used 4.0e20 hardware FLOPs"
    conditions = {c["type"]: c["status"] for c in cluster.status["conditions"]}
    assert conditions["Complete"] == conditions["Fitted"] == "True"
    writes = len(cluster.writes)
    step(cluster)
    assert len(cluster.writes) == writes and cluster.calls[-1].startswith("patch status"), "settled"


def test_an_operator_killed_after_creating_rungs_adopts_them_and_creates_none_twice() -> None:
    cluster = FakeCluster()
    step(cluster)
    cluster.status, cluster.calls = {}, []  # the status write was lost; the index knows nothing yet
    reconcile_ladder(context(cluster), ladder(), lambda _: None)
    assert cluster.calls[:4] == [
        f"create {job_name('130m')}",
        f"get {job_name('130m')}",
        f"create {job_name('300m')}",
        f"get {job_name('300m')}",
    ]
    assert len(cluster.jobs) == 2 and len(cluster.writes) == 1
    assert [r["phase"] for r in cluster.status["rungs"]][:2] == ["Pending", "Pending"]


def test_a_speedrunjob_of_that_name_owned_by_something_else_is_a_name_conflict() -> None:
    cluster = FakeCluster(
        jobs={job_name("130m"): {"metadata": {"name": job_name("130m"), "ownerReferences": []}, "spec": {}}}
    )
    reconcile_ladder(context(cluster), ladder(), lambda _: None)
    assert (cluster.status["phase"], cluster.status["reason"]) == ("Failed", "NameConflict")
    assert job_name("130m") in cluster.status["message"]
    assert cluster.created == [job_name("130m")], "nothing more is created"


def test_a_rung_fails_the_ladder_only_once_its_speedrunjob_has_failed_after_its_retries() -> None:
    cluster = FakeCluster()
    step(cluster)
    cluster.jobs[job_name("130m")]["status"] = {"phase": "Provisioning", "reason": "Retrying"}
    step(cluster)
    assert cluster.status["phase"] == "Running", "a rung retrying on a new Ray cluster is not a failure"
    cluster.jobs[job_name("130m")]["status"] = {"phase": "Failed", "reason": "BackoffLimitExceeded"}
    step(cluster)
    assert (cluster.status["phase"], cluster.status["reason"]) == ("Failed", "RungFailed")
    assert "130m" in cluster.status["message"] and "BackoffLimitExceeded" in cluster.status["message"]
    finish(cluster, "300m")
    step(cluster)
    assert len(cluster.created) == 2, "a failed ladder starts no new rung"
    assert rung(cluster, "300m")["evalBpb"] > 0, "a rung still running when another failed is followed"


def test_suspend_reaches_every_unfinished_rung_and_holds_back_new_ones() -> None:
    cluster = FakeCluster()
    step(cluster)
    finish(cluster, "130m")
    reconcile_ladder(
        context(cluster), ladder(cluster.status, cluster.version, suspend=True), cluster.jobs.get
    )
    patches = [call for call in cluster.calls if call.startswith("patch adamw")]
    assert patches == [f'patch {job_name("300m")} {{"spec": {{"suspend": true}}}}']
    assert len(cluster.created) == 2 and cluster.status["phase"] == "Suspended"
    reconcile_ladder(context(cluster), ladder(cluster.status, cluster.version), cluster.jobs.get)
    assert cluster.jobs[job_name("300m")]["spec"]["suspend"] is False
    assert cluster.created[-1] == job_name("520m") and cluster.status["phase"] == "Running"


def test_a_finished_rung_whose_speedrunjob_was_deleted_keeps_its_results_and_is_not_run_again() -> None:
    cluster = FakeCluster()
    step(cluster)
    finish(cluster, "130m")
    step(cluster)
    del cluster.jobs[job_name("130m")]
    step(cluster)
    assert rung(cluster, "130m")["evalBpb"] == pytest.approx(1.1862303018569946)
    assert cluster.created.count(job_name("130m")) == 1


def test_an_invalid_rung_fails_the_ladder_naming_the_rung_and_field_without_creating_anything() -> None:
    cluster = FakeCluster()
    body = ladder()
    body["spec"]["rungs"][1]["train"]["batchSize"] = 100
    reconcile_ladder(context(cluster), body, lambda _: None)
    assert cluster.created == []
    assert (cluster.status["phase"], cluster.status["reason"]) == ("Failed", "InvalidSpec")
    assert "spec.rungs[1].train.batchSize (300m): must be divisible" in cluster.status["message"]


def test_a_ladder_with_no_output_anywhere_fails_with_the_fix() -> None:
    cluster = FakeCluster()
    reconcile_ladder(context(cluster, default_output=None), ladder(), lambda _: None)
    assert cluster.created == []
    assert cluster.status["reason"] == "NoOutput" and "spec.base.output" in cluster.status["message"]


def test_the_metrics_show_each_ladders_phase_rungs_and_projections_and_forget_a_deleted_one() -> None:
    from prometheus_client import REGISTRY

    cluster = FakeCluster()
    step(cluster)
    for name in RUNGS:
        if job_name(name) not in cluster.jobs:
            step(cluster)
        finish(cluster, name)
    step(cluster)
    labels = {"namespace": "team-a", "ladder": "adamw-llama-scaling"}
    site = cluster.status["fit"]["site"]["projectedBpb"]
    assert REGISTRY.get_sample_value("speedrun_ladder_projected_bpb", {**labels, "fit": "site"}) == site
    assert REGISTRY.get_sample_value("speedrun_ladder_rungs_done", labels) == 4
    bpb = REGISTRY.get_sample_value("speedrun_ladder_rung_eval_bpb", {**labels, "rung": "130m"})
    assert bpb == pytest.approx(1.1862303018569946)
    assert (REGISTRY.get_sample_value("speedrun_ladders", {"phase": "Succeeded"}) or 0) >= 1
    from speedrun_operator import metrics

    metrics.observe_ladder("team-a", "adamw-llama-scaling", None)
    assert REGISTRY.get_sample_value("speedrun_ladder_projected_bpb", {**labels, "fit": "site"}) is None
    assert REGISTRY.get_sample_value("speedrun_ladder_rungs_done", labels) is None


def test_rungs_read_from_the_operators_speedrunjob_index_are_known_as_the_ladders_own() -> None:
    """The index keeps only part of each SpeedrunJob: enough for a ladder to know its rungs without a call."""
    import kopf

    from speedrun_operator.handlers.sync import essentials

    cluster = FakeCluster()
    step(cluster)
    cluster.jobs[job_name("130m")]["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    index = {name: essentials(kopf.Body(body)) for name, body in cluster.jobs.items()}  # type: ignore[arg-type]
    cluster.calls.clear()
    reconcile_ladder(context(cluster), ladder(cluster.status, cluster.version), index.get)
    assert not [call for call in cluster.calls if not call.startswith("patch status")], cluster.calls
