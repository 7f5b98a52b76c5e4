"""The chart's files agree with the code: metric names, the optional KubeRay dependency, the values table."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.registry import REGISTRY

import speedrun_operator.metrics  # noqa: F401  (registers the operator's metrics)

pytestmark = pytest.mark.unit

CHART = Path(__file__).resolve().parents[2] / "helm" / "speedrun-operator"
METRIC = re.compile(r"\bspeedrun_[a-z_]+(?=\{)")  # a metric in PromQL: its name, then its selector


def exported_names() -> set[str]:
    """Every sample name the operator exports (counters as *_total, histograms as *_bucket/_sum/_count)."""
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return {name for name in names if name.startswith("speedrun_")}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "dashboards" / "speedrun-operator.json").read_text())
    return loaded


def test_every_metric_the_dashboard_queries_is_one_the_operator_exports() -> None:
    queried = {
        m for panel in dashboard()["panels"] for t in panel["targets"] for m in METRIC.findall(t["expr"])
    }
    assert queried and queried <= exported_names(), queried - exported_names()


def test_every_metric_the_alerts_use_is_one_the_operator_exports() -> None:
    used = set(METRIC.findall((CHART / "templates" / "prometheusrule.yaml").read_text()))
    assert {"speedrun_jobs", "speedrun_phase_transitions_total"} <= used
    assert used <= exported_names(), used - exported_names()


def test_the_dashboard_covers_phases_progress_throughput_mfu_authors_and_accelerator_hours() -> None:
    panels = dashboard()["panels"]
    titles = " | ".join(panel["title"] for panel in panels).lower()
    for topic in ("by phase", "progress", "throughput", "mfu", "by author", "accelerator hours"):
        assert topic in titles, topic
    exprs = " ".join(t["expr"] for panel in panels for t in panel["targets"])
    for metric in ("speedrun_jobs", "speedrun_result_mfu_ratio", "speedrun_result_eval_bpb",
                   "speedrun_accelerator_hours_total", "speedrun_phase_transitions_total"):  # fmt: skip
        assert metric in exprs, metric
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))


def test_kuberay_operator_is_an_optional_dependency_off_by_default() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    (dependency,) = chart["dependencies"]
    assert dependency["name"] == "kuberay-operator" and dependency["condition"] == "kuberay-operator.enabled"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["kuberay-operator"] == {"enabled": False}
    assert not (CHART / "charts").exists(), (
        "the dependency is not vendored: `helm dependency build` does that"
    )


def leaf_keys(values: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in {"labels", "resources", "podSecurityContext",
                                                             "securityContext"}:  # fmt: skip
            keys += leaf_keys(value, f"{path}.")
        else:
            keys.append(path)
    return keys


def test_the_readme_values_table_documents_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    assert set(leaf_keys(values)) == documented


def test_the_schema_knows_every_top_level_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    assert set(values) <= set(schema["properties"])
