"""How the harness registers Kueue's webhooks and configures it (harness/kueue.py), on manifests shaped as
Kueue 0.17's config/components/webhook/manifests.yaml; the cluster tier runs the real ones."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import kueue

pytestmark = pytest.mark.unit


def webhook(name: str, path: str, group: str, resource: str) -> dict[str, Any]:
    return {
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"name": "webhook-service", "namespace": "system", "path": path}},
        "failurePolicy": "Fail",
        "name": name,
        "rules": [
            {"apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": [resource]}
        ],
        "sideEffects": "None",
    }


MANIFESTS = yaml.safe_dump_all(
    [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "mutating-webhook-configuration"},
            "webhooks": [
                webhook("mjob.kb.io", "/mutate-batch-v1-job", "batch", "jobs"),
                webhook("mpod.kb.io", "/mutate--v1-pod", "", "pods"),
                webhook("mraycluster.kb.io", "/mutate-ray-io-v1-raycluster", "ray.io", "rayclusters"),
                webhook("mrayjob.kb.io", "/mutate-ray-io-v1-rayjob", "ray.io", "rayjobs"),
                webhook(
                    "mworkload.kb.io",
                    "/mutate-kueue-x-k8s-io-v1beta2-workload",
                    "kueue.x-k8s.io",
                    "workloads",
                ),
            ],
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "validating-webhook-configuration"},
            "webhooks": [
                webhook("vclusterqueue.kb.io", "/validate-cq", "kueue.x-k8s.io", "clusterqueues"),
                webhook("vrayjob.kb.io", "/validate-ray-io-v1-rayjob", "ray.io", "rayjobs"),
            ],
        },
    ]
)


def test_only_the_webhooks_this_kueue_serves_are_registered_by_url_on_loopback() -> None:
    mutating, validating = kueue.webhook_configurations(
        MANIFESTS, url="https://127.0.0.1:9443", ca_bundle=b"CA"
    )
    assert mutating["metadata"]["name"] == "kueue-mutating-webhook-configuration"
    assert [w["name"] for w in mutating["webhooks"]] == ["mrayjob.kb.io", "mworkload.kb.io"]
    assert [w["name"] for w in validating["webhooks"]] == ["vclusterqueue.kb.io", "vrayjob.kb.io"]
    rayjob = mutating["webhooks"][0]
    assert rayjob["clientConfig"] == {
        "url": "https://127.0.0.1:9443/mutate-ray-io-v1-rayjob",
        "caBundle": base64.b64encode(b"CA").decode(),
    }


def test_rayjob_webhooks_see_only_queued_rayjobs_and_kueues_own_kinds_see_all() -> None:
    mutating, validating = kueue.webhook_configurations(MANIFESTS, url="https://127.0.0.1:1", ca_bundle=b"")
    by_name = {w["name"]: w for w in [*mutating["webhooks"], *validating["webhooks"]]}
    queued = {"matchExpressions": [{"key": "kueue.x-k8s.io/queue-name", "operator": "Exists"}]}
    assert by_name["mrayjob.kb.io"]["objectSelector"] == queued
    assert by_name["vrayjob.kb.io"]["objectSelector"] == queued
    assert "objectSelector" not in by_name["mworkload.kb.io"]


def test_kueue_is_configured_for_rayjobs_with_a_queue_only_on_loopback(tmp_path: Path) -> None:
    config = kueue.configuration(health_port=1, metrics_port=2, webhook_port=3, cert_dir=tmp_path)
    assert config["integrations"] == {"frameworks": ["ray.io/rayjob"]}
    assert config["manageJobsWithoutQueueName"] is False
    assert config["webhook"] == {"host": "127.0.0.1", "port": 3, "certDir": str(tmp_path)}
    assert config["health"]["healthProbeBindAddress"] == "127.0.0.1:1"
    assert config["metrics"]["bindAddress"] == "127.0.0.1:2"
    assert config["internalCertManagement"] == {"enable": False}
