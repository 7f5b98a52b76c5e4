"""The operator as it ships: installed by the Helm chart, running as a pod from the operator image under the
chart's RBAC, it takes the hello-world to Succeeded on the real node, in a namespace that enforces Pod
Security's restricted profile (as many shared clusters make their tenants' namespaces): the operator's pod
and every pod of the job are admitted there. With the chart's defaults its validating webhook is on: the API
server calls the pod through the webhook Service (kube-proxy's rules on this machine) with the certificate
Helm made, and every bad file of tests/unit/bad_specs/ is refused at `kubectl apply`, naming its field.

The session operator (a local process) is stopped for this test, so every write to the SpeedrunJob and its
RayJob comes from the pod. The job names neither an image, an output nor a ServiceAccount: the chart's
defaults supply them, and the trainer reports through the chart's training ServiceAccount.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gcsfs
import pytest
import yaml

from fixtures.bad_specs import assert_every_bad_file_refused
from fixtures.helm_chart import chart_copy, helm
from fixtures.real_node_jobs import LOCAL_TOLERATION, STEPS, Timeline, follow, local_hello_world
from fixtures.speedrunjobs import field_managers
from fixtures.storage import GcsEmulator
from harness.build import say
from harness.cluster import wait_for
from harness.node import NODE_NAME, RealNode
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PEERING_CRDS = ROOT / "crds" / "kopf-peering.yaml"
RELEASE = "speedrun-operator"
TRAINING_ACCOUNT = "speedrun-training"


def chart_values(real_node: RealNode, emulator: GcsEmulator, output: str, namespace: str) -> dict[str, Any]:
    assert real_node.image_set is not None
    repository, tag = real_node.image_set.images["speedrun-operator"].ref.rsplit(":", 1)
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "replicaCount": 1,
        "peering": {"name": f"speedrun-{namespace}"},
        "defaults": {
            "trainerImage": real_node.image_set.images["speedrun-trainer"].ref,
            "output": output,
        },
        # The emulator stands in for GCS; the real node has 2 CPUs, so the head asks for none (see the
        # session operator's fixture).
        "extraEnv": [
            *({"name": k, "value": v} for k, v in emulator.env.items()),
            {"name": "SPEEDRUN_HEAD_CPU", "value": "0"},
        ],
        "nodeSelector": {"pool": "local"},
        "tolerations": [LOCAL_TOLERATION],
        # No Prometheus operator in the test cluster: its CRDs are not there.
        "prometheusRule": {"enabled": False},
    }


def operator_pods(cluster: ClusterFixture, namespace: str) -> list[dict[str, Any]]:
    return cluster.objects("pod", namespace, selector="app.kubernetes.io/component=operator")


def operator_logs(cluster: ClusterFixture, namespace: str) -> str:
    selector = "app.kubernetes.io/component=operator"
    logs = cluster.kubectl("logs", "-n", namespace, "-l", selector, "--tail=400", check=False)
    return logs.stdout + logs.stderr


RESTRICTED = (
    "pod-security.kubernetes.io/enforce=restricted",
    "pod-security.kubernetes.io/enforce-version=latest",
)


def test_the_chart_installed_operator_pod_refuses_bad_files_and_trains_hello_world_under_restricted(
    cluster: ClusterFixture,
    cluster_namespace: str,
    real_node: RealNode,
    without_operator: None,
    gcs_emulator: GcsEmulator,
    tmp_path: Path,
) -> None:
    assert real_node.image_set is not None
    images = real_node.image_set.images
    output = gcs_emulator.url("e2e-operator-pod", cluster_namespace)
    cluster.kubectl("label", "namespace", cluster_namespace, *RESTRICTED)
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(chart_values(real_node, gcs_emulator, output, cluster_namespace)))
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(PEERING_CRDS))
    home = tmp_path / "helm"
    installed = helm(
        home,
        "install",
        RELEASE,
        str(chart_copy(tmp_path)),
        "-n",
        cluster_namespace,
        "-f",
        str(values),
        "--wait",
        "--timeout=180s",
        kubeconfig=cluster.kubeconfig,
    )
    try:
        assert installed.returncode == 0, (
            installed.stdout + installed.stderr + operator_logs(cluster, cluster_namespace)
        )
        (pod,) = operator_pods(cluster, cluster_namespace)
        assert pod["spec"]["nodeName"] == NODE_NAME
        assert pod["spec"]["serviceAccountName"] == RELEASE
        assert pod["spec"]["containers"][0]["image"] == images["speedrun-operator"].ref
        configuration = cluster.get("validatingwebhookconfiguration", f"{RELEASE}-{cluster_namespace}")
        assert configuration is not None and configuration["webhooks"][0]["clientConfig"]["caBundle"]
        assert_every_bad_file_refused(cluster, cluster_namespace)

        timeline = Timeline()
        cluster.create(local_hello_world("from-the-pod", gcs_emulator), cluster_namespace)
        status = follow(cluster, cluster_namespace, "from-the-pod", timeline)
        say(f"e2e timeline, operator in a pod (apply → ...): {timeline.summary()}")
        logs = operator_logs(cluster, cluster_namespace)
        assert status["phase"] == "Succeeded", json.dumps(status, indent=1) + logs
        assert "Forbidden" not in logs, logs
        # The session operator is stopped: the pod wrote the phase, the trainer its progress.
        writers = field_managers(cluster, "srj", cluster_namespace, "from-the-pod", "status")
        assert {"speedrun-operator", "speedrun-trainer"} <= writers, writers
        rayjob = cluster.get("rayjob", status["rayJobName"], cluster_namespace)
        assert rayjob is not None and rayjob["status"]["jobStatus"] == "SUCCEEDED"
        # Restricted admission refuses KubeRay's SidecarMode submitter: the job is submitted by a pod of ours.
        assert rayjob["spec"]["submissionMode"] == "K8sJobMode"
        cluster_spec = rayjob["spec"]["rayClusterSpec"]
        for template in (cluster_spec["headGroupSpec"], *cluster_spec["workerGroupSpecs"]):
            assert template["template"]["spec"]["serviceAccountName"] == TRAINING_ACCOUNT
            assert template["template"]["spec"]["containers"][0]["image"] == images["speedrun-trainer"].ref
        assert status["results"]["resultsUrl"].startswith(output)
        fs = gcsfs.GCSFileSystem(endpoint_url=gcs_emulator.endpoint, token="anon")
        run_info = json.loads(fs.cat(status["results"]["resultsUrl"]))["runs"][0]["run_info"]
        assert run_info["steps_completed"] == STEPS
    finally:
        helm(home, "uninstall", RELEASE, "-n", cluster_namespace, "--wait", kubeconfig=cluster.kubeconfig)
        wait_for(
            lambda: not operator_pods(cluster, cluster_namespace), what="the operator pod gone", timeout=120
        )
