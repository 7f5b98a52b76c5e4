"""The chart's alerts and dashboard against a real Prometheus 3 and promtool, both built by the harness.

promtool checks the rules `helm template` renders from the chart and runs the unit tests of
tests/data/prometheus/rules_test.yaml on them. Then a Prometheus on loopback scrapes the session's operator
every second, as a ServiceMonitor of the release would (job: the metrics Service; namespace and pod as
target labels, so the operator's own `job` and `namespace` labels become `exported_job` and
`exported_namespace`), and evaluates the same rules every second while SpeedrunJobs and a SpeedrunLadder go
through their lives on kwok: every query of every dashboard panel is answered with series, and
SpeedrunJobsFailing fires after a job fails.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
import yaml

from fixtures.helm_chart import CHART, chart_copy, documents, helm, one
from fixtures.operator import OperatorProcess
from fixtures.speedrunjobs import (
    apply,
    example_manifest,
    marin_results_json,
    phase_is,
    set_rayjob_status,
    wait_srj,
)
from fixtures.storage import GcsEmulator
from harness import build, processes
from harness.cluster import wait_for
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
RULES_TESTS = ROOT / "tests" / "data" / "prometheus" / "rules_test.yaml"
MARIN_LADDER = ROOT / "tests" / "data" / "leaderboard" / "marin" / "adamw_llama_scaling"
RELEASE, RELEASE_NAMESPACE = "speedrun-operator", "speedrun-system"
SCRAPE_JOB = f"{RELEASE}-metrics"  # the chart's metrics Service: a ServiceMonitor's job label
RATE_INTERVAL = "30s"  # what Grafana's $__rate_interval stands for here (a few 1 s scrapes)


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart's PrometheusRule rendered with the default values, as a Prometheus rules file."""
    directory = tmp_path_factory.mktemp("rules")
    chart = chart_copy(directory)
    rendered = helm(directory / "helm", "template", RELEASE, str(chart), "--namespace", RELEASE_NAMESPACE)
    assert rendered.returncode == 0, rendered.stderr
    rule = one(documents(rendered.stdout), "PrometheusRule")
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, width=1000))
    return path


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = build.ensure(["promtool"])["promtool"].path
    return subprocess.run([str(binary), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def alert_names(rules: Path) -> set[str]:
    groups = yaml.safe_load(rules.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_promtool_finds_the_rendered_rules_valid(rules: Path) -> None:
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", rules.name, cwd=rules.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names(rules))} rules found" in result.stdout


def test_every_alert_fires_when_it_should_and_stays_quiet_when_it_should_not(rules: Path) -> None:
    shutil.copyfile(RULES_TESTS, rules.parent / RULES_TESTS.name)
    result = promtool("test", "rules", RULES_TESTS.name, cwd=rules.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = [
        case for test in yaml.safe_load(RULES_TESTS.read_text())["tests"] for case in test["alert_rule_test"]
    ]
    for alert in alert_names(rules):
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in mine), f"no test shows {alert} firing"
        assert any(not case["exp_alerts"] for case in mine), f"no test shows {alert} quiet"


# --- a real Prometheus scraping the real operator ----------------------------------------------------------


@dataclass(frozen=True)
class Prometheus:
    url: str
    started: float  # time.monotonic() at start

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data["resultType"])
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str, **labels: str) -> float:
        """The value of the one series of ``expr`` that has ``labels``."""
        for series in self.query(expr):
            if all(series["metric"].get(k) == v for k, v in labels.items()):
                return float(series["value"][1])
        raise AssertionError(f"no series of {expr} with {labels}")

    def range_s(self) -> int:
        """Grafana's $__range for a dashboard showing everything since the first scrape."""
        return math.ceil(time.monotonic() - self.started) + 1

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]


@pytest.fixture(scope="module")
def prometheus(
    operator: OperatorProcess, rules: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    binary = build.ensure(["prometheus"])["prometheus"].path
    directory = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": SCRAPE_JOB,
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{operator.metrics_port}"],
                        "labels": {"namespace": RELEASE_NAMESPACE, "pod": f"{RELEASE}-local"},
                    }
                ],
            }
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    (port,) = processes.free_ports(1)
    argv = [
        str(binary),
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    url = f"http://127.0.0.1:{port}"
    with processes.supervised(directory / "pids.json") as supervisor:
        server = supervisor.start("prometheus", argv, log=directory / "prometheus.log", cwd=directory)
        processes.wait_until(
            lambda: processes.http_ok(f"{url}/-/ready"), what="Prometheus ready", timeout=60, watch=[server]
        )
        ready = Prometheus(url, time.monotonic())
        # Scraped once before any job moves: what follows is seen as increases from there.
        processes.wait_until(
            lambda: bool(ready.query(f'up{{job="{SCRAPE_JOB}"}} == 1')),
            what="the operator scraped",
            timeout=30,
            watch=[server],
        )
        yield ready


def dashboard_queries() -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) of every query of every panel (rows' panels too) of every dashboard."""
    found = []
    for path in sorted((CHART / "dashboards").glob("*.json")):
        panels = list(json.loads(path.read_text())["panels"])
        while panels:
            panel = panels.pop(0)
            panels.extend(panel.get("panels", []))
            found += [
                (f"{path.name}: {panel['title']}", t) for t in panel.get("targets", []) if t.get("expr")
            ]
    return found


def with_variables(expr: str, job: str, range_s: int) -> str:
    """The query as Grafana sends it: the dashboard's variables and Grafana's own replaced by values."""
    values = {"job": job, "__rate_interval": RATE_INTERVAL, "__range": f"{range_s}s"}
    filled = re.sub(r"\$(\w+)", lambda m: values[m.group(1)], expr)
    assert "$" not in filled, filled
    return filled


SUCCEEDED = {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "endTime": "2026-12-01T12:00:00Z"}


def finish_rung(cluster: ClusterFixture, gcs: GcsEmulator, namespace: str, ladder: str, rung: str) -> None:
    """Write the rung's results (Marin's own run of that size) where its trainer would, then succeed it."""
    job = f"{ladder}-{rung}"
    status = wait_srj(cluster, namespace, job, lambda s: "rayJobName" in s, "its RayJob created")["status"]
    document = json.loads((MARIN_LADDER / rung.replace("-", "_") / "speedrun_results.json").read_text())
    document["runs"][0]["run_info"]["author"] = {"name": "Your Name", "affiliation": "Your Lab", "url": None}
    with fsspec.open(gcs.url("runs", ladder, job, "speedrun_results.json"), "w") as handle:
        handle.write(json.dumps(document))
    set_rayjob_status(cluster, namespace, status["rayJobName"], SUCCEEDED)


def run_and_succeed(
    prometheus: Prometheus, cluster: ClusterFixture, gcs: GcsEmulator, namespace: str, name: str
) -> None:
    """The A100 example through Running to Succeeded with results (KubeRay's part reported for it)."""
    apply(cluster, namespace, example_manifest("marin-hello-world-a100.yaml", name=name))
    status = wait_srj(cluster, namespace, name, lambda s: "rayClusterName" in s, "its RayCluster")["status"]
    # Reported running once its head and worker run, as KubeRay would: earlier, KubeRay's own pass undoes it.
    wait_for(
        lambda: (
            len(
                cluster.objects(
                    "pods",
                    namespace,
                    selector=f"ray.io/cluster={status['rayClusterName']}",
                    field_selector="status.phase=Running",
                )
            )
            == 2
        ),
        what=f"the head and worker of {name} Running",
        timeout=120,
    )
    running = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
    set_rayjob_status(cluster, namespace, status["rayJobName"], running)
    wait_srj(cluster, namespace, name, phase_is("Running"), "Running")
    # Scraped while it runs, so the hours it adds at its end are an increase. The series may already count
    # the A100 runs of earlier tests against this session's operator: its value here is not zero then.
    wait_for(
        lambda: prometheus.query('speedrun_accelerator_hours_total{accelerator="A100"}'),
        what="the A100 hours series scraped while the run runs",
        timeout=30,
    )
    with fsspec.open(gcs.url("runs", name, "speedrun_results.json"), "w") as handle:
        handle.write(marin_results_json(1.234))
    set_rayjob_status(cluster, namespace, status["rayJobName"], SUCCEEDED)


def fail_in_kuberay(cluster: ClusterFixture, namespace: str, name: str) -> None:
    apply(cluster, namespace, example_manifest("tpu-v4-8.yaml", name=name))
    status = wait_srj(cluster, namespace, name, lambda s: "rayJobName" in s, "its RayJob created")["status"]
    failed = {
        "jobDeploymentStatus": "Failed",
        "jobStatus": "FAILED",
        "reason": "AppFailed",
        "message": "boom",
    }
    set_rayjob_status(cluster, namespace, status["rayJobName"], failed)


def refuse_a_rayjob(cluster: ClusterFixture, namespace: str, name: str) -> None:
    """A job whose RayJob the API server refuses (a quota of none): the operator's failed call is counted."""
    quota = {"hard": {"count/rayjobs.ray.io": "0"}}
    cluster.create(
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-rayjobs"}, "spec": quota},
        namespace,
    )
    wait_for(
        lambda: (cluster.get("resourcequota", "no-rayjobs", namespace) or {}).get("status", {}).get("hard"),
        what="the quota counted",
    )
    apply(cluster, namespace, example_manifest("tpu-v4-8.yaml", name=name))


def dashboard_answers(
    prometheus: Prometheus, queries: list[tuple[str, dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """Each query's series, once every query has some (the operator's state reaches Prometheus in scrapes)."""

    def answers() -> dict[str, list[dict[str, Any]]]:
        range_s = prometheus.range_s()
        return {
            t["expr"]: prometheus.query(with_variables(t["expr"], SCRAPE_JOB, range_s)) for _, t in queries
        }

    def all_answered() -> dict[str, list[dict[str, Any]]] | None:
        got = answers()
        return got if all(got.values()) else None

    try:
        found: dict[str, list[dict[str, Any]]] = wait_for(
            all_answered, what="every dashboard query answered with series", timeout=60
        )
    except TimeoutError:
        got = answers()
        empty = [f"{title}: {t['expr']}" for title, t in queries if not got[t["expr"]]]
        raise AssertionError("queries without series:\n" + "\n".join(empty)) from None
    return found


def test_every_dashboard_query_is_answered_by_a_prometheus_that_scraped_the_operator_and_a_failure_alerts(
    prometheus: Prometheus, gcs_emulator: GcsEmulator, cluster: ClusterFixture, cluster_namespace: str
) -> None:
    ns, ladder = cluster_namespace, "adamw-llama-scaling"
    # A run that succeeds with results, a run KubeRay fails, a ladder fitted from three finished rungs.
    apply(cluster, ns, example_manifest("ladders/adamw-llama-scaling-v5p-32.yaml"))
    run_and_succeed(prometheus, cluster, gcs_emulator, ns, "observed")
    fail_in_kuberay(cluster, ns, "doomed")
    for rung in ("130m", "300m", "520m"):
        finish_rung(cluster, gcs_emulator, ns, ladder, rung)
    wait_srj(cluster, ns, "observed", lambda s: "results" in s, "Succeeded with results")
    wait_srj(cluster, ns, "doomed", phase_is("Failed"), "Failed")
    fit = wait_for(
        lambda: ((cluster.get("speedrunladder", ladder, ns) or {}).get("status") or {}).get("fit"),
        what="the ladder fitted from three rungs",
        timeout=90,
    )
    refuse_a_rayjob(cluster, ns, "refused")

    # The dashboard's variable first: its values name the operator's scrape job.
    assert prometheus.api("label/job/values", **{"match[]": "speedrun_jobs"}) == [SCRAPE_JOB]
    queries = dashboard_queries()
    assert len(queries) >= 20, "every panel's queries, ladders' included"
    answered = dashboard_answers(prometheus, queries)
    # Legends name the series' own labels; where the target's label displaced the object's, the object's.
    for title, target in queries:
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")):
            for series in answered[target["expr"]]:
                labels = series["metric"]
                assert label in labels, f"{title}: legend {{{{{label}}}}} is not a label of {labels}"
                assert f"exported_{label}" not in labels, (
                    f"{title}: legend {{{{{label}}}}} shows the scrape target's {label}, not the object's"
                    f" (exported_{label}={labels[f'exported_{label}']})"
                )

    mine = {"exported_namespace": ns, "exported_job": "observed"}
    assert prometheus.value("speedrun_result_eval_bpb", **mine) == 1.234
    assert prometheus.value("speedrun_result_mfu_ratio", **mine) == pytest.approx(4.1342e13 / 3.9e15)
    window = f"{prometheus.range_s()}s"
    hours = f"sum by (accelerator) (increase(speedrun_accelerator_hours_total[{window}]))"
    assert prometheus.value(hours, accelerator="A100") > 0, "the finished run's chip-hours are an increase"
    p50 = f"histogram_quantile(0.5, sum by (le) (rate(speedrun_time_to_running_seconds_bucket[{window}])))"
    assert math.isfinite(prometheus.value(p50))
    bpb = prometheus.value("speedrun_ladder_projected_bpb", exported_namespace=ns, ladder=ladder, fit="site")
    assert bpb == pytest.approx(fit["site"]["projectedBpb"])
    assert prometheus.value("speedrun_ladder_rungs_done", exported_namespace=ns, ladder=ladder) == 3
    errors = 'speedrun_kubernetes_api_errors_total{verb="create", resource="rayjobs", code="403"}'
    # The operator tries that create when it gets to the job, which may be after every panel has its series.
    wait_for(lambda: prometheus.query(errors), what="the refused create counted", timeout=60)

    # The chart's alert for failing jobs, evaluated by this Prometheus on what it scraped.
    firing = wait_for(
        lambda: [a for a in prometheus.alerts("SpeedrunJobsFailing") if a["state"] == "firing"],
        what="SpeedrunJobsFailing firing",
        timeout=30,
    )
    assert firing[0]["labels"]["severity"] == "warning"
    assert "SpeedrunJob(s) entered Failed in the last 15m" in firing[0]["annotations"]["description"]
    assert prometheus.alerts("SpeedrunOperatorDown") == [], "the scraped operator is up"
