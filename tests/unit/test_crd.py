"""The CRD is generated from the pydantic models, is structural, and never drifts from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from speedrun_operator import crd

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

# Keys of apiextensions.k8s.io/v1 JSONSchemaProps that a structural schema may use.
ALLOWED_KEYS = {
    "type", "description", "properties", "items", "required", "enum", "format", "pattern", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems",
    "minProperties", "maxProperties", "additionalProperties", "nullable", "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields",
}  # fmt: skip


def schema_nodes(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path or "<root>", node)]
    for name, child in node.get("properties", {}).items():
        found += schema_nodes(child, f"{path}.{name}")
    if "items" in node:
        found += schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += schema_nodes(node["additionalProperties"], f"{path}{{}}")
    return found


def generated_schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_committed_crd_files_match_the_models() -> None:
    drifted = crd.drifted_files(ROOT)
    assert not drifted, f"{drifted} drifted from the pydantic models: run `make crd` and commit the result"


def test_the_chart_ships_the_same_crd_as_crds_folder() -> None:
    assert (ROOT / crd.CRD_FILE).read_text() == (ROOT / crd.CHART_CRD_FILE).read_text()


def test_schema_is_structural() -> None:
    for path, node in schema_nodes(generated_schema()):
        assert "type" in node, f"{path} has no type"
        unknown = set(node) - ALLOWED_KEYS
        assert not unknown, f"{path} uses keys a CRD schema does not allow: {unknown}"
        assert not ("properties" in node and "additionalProperties" in node), path
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(key, True), bool), f"{path}.{key} must be a boolean in OpenAPI v3.0"
        missing = set(node.get("required", [])) - set(node.get("properties", {}))
        assert not missing, f"{path} requires undeclared {missing}"


def test_every_spec_field_is_described_for_kubectl_explain() -> None:
    spec = generated_schema()["properties"]["spec"]
    fields = [(path, node) for path, node in schema_nodes(spec) if not path.endswith(("[]", "{}"))]
    undocumented = [path for path, node in fields if not node.get("description")]
    assert not undocumented


def test_defaults_live_in_descriptions_not_in_the_schema() -> None:
    # The API server would write defaults into stored objects, which GitOps tools then see as drift.
    spec = generated_schema()["properties"]["spec"]
    assert all("default" not in node for _, node in schema_nodes(spec))
    steps_per_eval = spec["properties"]["train"]["properties"]["stepsPerEval"]
    assert "Default: 1000" in steps_per_eval["description"]


def test_crd_names_and_printer_columns_tell_the_story() -> None:
    document = yaml.safe_load((ROOT / crd.CRD_FILE).read_text())
    names = document["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("SpeedrunJob", "speedrunjobs", ["srj"])
    version = document["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert columns[:5] == ["Phase", "Accelerator", "Params", "Progress", "BPB"] and columns[-1] == "Age"


def test_cel_rules_guard_what_the_api_server_can_check_alone() -> None:
    schema = generated_schema()
    resources = schema["properties"]["spec"]["properties"]["resources"]
    assert "has(self.gpu)" in resources["x-kubernetes-validations"][0]["rule"]
    immutability = schema["x-kubernetes-validations"][0]
    assert "oldSelf.status.startTime" in immutability["rule"]
    assert "self.spec.suspend" not in immutability["rule"]
    assert "self.spec.train == oldSelf.spec.train" in immutability["rule"]


def test_the_chart_ships_the_same_kopf_peering_crds_as_crds_folder() -> None:
    chart_copy = ROOT / "helm" / "speedrun-operator" / "crds" / "kopf-peering.yaml"
    assert chart_copy.read_text() == (ROOT / "crds" / "kopf-peering.yaml").read_text(), (
        "copy crds/kopf-peering.yaml over the chart's copy"
    )


def test_a_tagged_union_is_one_structural_object_whose_rules_name_the_types_of_each_field() -> None:
    from speedrun_operator.api.optimizers import OPTIMIZER_MODELS

    train = generated_schema()["properties"]["spec"]["properties"]["train"]["properties"]
    optimizer = train["optimizer"]
    assert optimizer["type"] == "object" and optimizer["required"] == ["type"]
    assert optimizer["properties"]["type"]["enum"] == list(OPTIMIZER_MODELS)
    assert not {"oneOf", "anyOf", "allOf"} & {key for _, node in schema_nodes(optimizer) for key in node}
    rules = {rule["rule"]: rule["message"] for rule in optimizer["x-kubernetes-validations"]}
    rule = '!has(self.adamLr) || self.type in ["adamH", "muon", "muonH"]'
    assert rules[rule] == "adamLr belongs to type adamH, muon, muonH only; remove it or change type"
    assert "Default: 0.9 (adam" in optimizer["properties"]["beta1"]["description"]
    assert train["lrScheduleConfig"]["properties"]["type"]["enum"][-1] == "power"
