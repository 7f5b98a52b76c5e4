"""A real kubelet node in the test cluster: its own pool beside the kwok pools, real pods, nothing leaves.

The node (containerd, kubelet, kube-proxy, CoreDNS on the harness's bridge) is started by the same ``cluster``
fixture as the control plane; KubeRay (with ``-use-kubernetes-proxy``) completes RayJobs on it by itself.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from fixtures.speedrunjobs import PATIENT_RAY_ENV
from harness import netsafety, pools
from harness.cluster import wait_for
from harness.node import NODE_NAME, RealNode
from harness.pytest_plugin import ClusterFixture

pytestmark = pytest.mark.e2e

LOCAL_POOL = {"pool": "local"}
LOCAL_TOLERATION = {"key": "pool", "operator": "Equal", "value": "local", "effect": "NoSchedule"}

# Run in a pod: what its network lets it do, as JSON on stdout.
NETWORK_PROBE = r"""
import json, os, socket, ssl, urllib.request
out = {}
with open("/proc/net/route") as f:
    out["routes"] = [line.split()[1] for line in f.read().splitlines()[1:]]
out["apiserver_ip"] = socket.gethostbyname("kubernetes.default.svc.cluster.local")
try:
    socket.gethostbyname("pypi.org")
    out["outside_name"] = "resolved"
except OSError as exc:
    out["outside_name"] = type(exc).__name__
sock = socket.socket()
sock.settimeout(5)
try:
    sock.connect(("1.1.1.1", 443))
    out["outside_connect"] = "connected"
except OSError as exc:
    out["outside_connect"] = exc.errno
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
token = open(f"{sa}/token").read()
namespace = open(f"{sa}/namespace").read()
context = ssl.create_default_context(cafile=f"{sa}/ca.crt")
def get(path):
    request = urllib.request.Request("https://kubernetes.default.svc" + path,
                                     headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
out["list_pods"] = get(f"/api/v1/namespaces/{namespace}/pods")
out["list_secrets"] = get(f"/api/v1/namespaces/{namespace}/secrets")
print(json.dumps(out))
"""


def local_pod(name: str, image: str, command: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": LOCAL_POOL,
            "tolerations": [LOCAL_TOLERATION],
            "containers": [{"name": "main", "image": image, "imagePullPolicy": "Never", "command": command}],
            **spec,
        },
    }


def pod_phase(cluster: ClusterFixture, namespace: str, name: str) -> str:
    pod = cluster.get("pod", name, namespace)
    return str((pod or {}).get("status", {}).get("phase", ""))


def test_the_node_joins_as_its_own_pool_beside_the_unchanged_kwok_pools(
    cluster: ClusterFixture, real_node: RealNode
) -> None:
    node = cluster.get("node", NODE_NAME)
    assert node is not None
    assert node["metadata"]["labels"]["pool"] == "local"
    assert {"key": "pool", "value": "local", "effect": "NoSchedule"} in node["spec"]["taints"]
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert {"type": "InternalIP", "address": netsafety.GATEWAY} in node["status"]["addresses"]
    assert "kwok.x-k8s.io/node" not in node["metadata"].get("annotations", {})
    kwok_names = {n for pool in pools.load_pools() for n in pool.node_names()}
    names = {n["metadata"]["name"] for n in cluster.objects("node")}
    assert names == kwok_names | {NODE_NAME}
    assert real_node.timings.ready_seconds > 0


def test_a_pod_of_the_trainer_image_reaches_the_api_with_its_token_and_nothing_outside(
    cluster: ClusterFixture, cluster_namespace: str, real_node: RealNode
) -> None:
    assert real_node.image_set is not None
    image = real_node.image_set.images["speedrun-trainer"].ref
    cluster.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        },
        cluster_namespace,
    )
    cluster.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "pod-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": cluster_namespace}],
        },
        cluster_namespace,
    )
    cluster.create(local_pod("probe", image, ["python", "-c", NETWORK_PROBE]), cluster_namespace)
    wait_for(
        lambda: pod_phase(cluster, cluster_namespace, "probe") in ("Succeeded", "Failed"),
        what="the probe pod to finish",
        timeout=120,
    )
    logs = cluster.kubectl("logs", "-n", cluster_namespace, "probe").stdout
    assert pod_phase(cluster, cluster_namespace, "probe") == "Succeeded", logs
    report = json.loads(logs.strip().splitlines()[-1])
    assert "00000000" not in report["routes"], "a pod must have no default route"
    assert report["apiserver_ip"] == "10.0.0.1"
    assert report["outside_name"] == "gaierror"
    assert report["outside_connect"] == 101  # ENETUNREACH: refused in the pod, nothing sent
    assert report["list_pods"] == 200
    assert report["list_secrets"] == 403
    pod = cluster.get("pod", "probe", cluster_namespace)
    assert pod is not None and pod["spec"]["nodeName"] == NODE_NAME
    assert pod["status"]["podIP"].startswith("10.244.7.")


def test_an_image_that_is_not_preloaded_fails_on_the_machine_instead_of_being_pulled(
    cluster: ClusterFixture, cluster_namespace: str, real_node: RealNode
) -> None:
    pod = local_pod("pull", "registry.example.invalid/nothing:1", ["true"])
    pod["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    cluster.create(pod, cluster_namespace)

    def waiting_reason() -> str | None:
        found = cluster.get("pod", "pull", cluster_namespace) or {}
        for status in found.get("status", {}).get("containerStatuses", []):
            waiting = status.get("state", {}).get("waiting", {})
            if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                return str(waiting.get("message", ""))
        return None

    message = wait_for(waiting_reason, what="the pull to fail", timeout=60)
    assert "127.0.0.1" in message or "proxyconnect" in message, message


def test_a_pod_that_does_not_ask_for_the_local_pool_never_lands_on_it(
    cluster: ClusterFixture, cluster_namespace: str, real_node: RealNode
) -> None:
    pod = local_pod("elsewhere", "localhost/anything:1", ["true"])
    del pod["spec"]["nodeSelector"], pod["spec"]["tolerations"]
    cluster.create(pod, cluster_namespace)
    scheduled = wait_for(
        lambda: (cluster.get("pod", "elsewhere", cluster_namespace) or {}).get("spec", {}).get("nodeName"),
        what="the pod to be scheduled",
        timeout=60,
    )
    assert scheduled != NODE_NAME


def trivial_rayjob(image: str) -> dict[str, Any]:
    placement = {"nodeSelector": LOCAL_POOL, "tolerations": [LOCAL_TOLERATION]}

    def template(name: str, cpu: str, memory: str) -> dict[str, Any]:
        limits = {"cpu": cpu, "memory": memory}
        container = {
            "name": name,
            "image": image,
            "resources": {"requests": limits, "limits": limits},
            "env": [{"name": k, "value": v} for k, v in PATIENT_RAY_ENV.items()],
        }
        return {"spec": {"containers": [container], **placement}}

    # On the worker: the only node that advertises the custom resource, as the trainer's task will need.
    entrypoint = (
        'python -c "import ray; ray.init(); '
        "f = ray.remote(resources={'speedrun-worker': 1})(lambda: 6 * 7); "
        "print('answer', ray.get(f.remote()))\""
    )
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": "trivial"},
        "spec": {
            "entrypoint": entrypoint,
            "submissionMode": "HTTPMode",
            "shutdownAfterJobFinishes": True,
            "rayClusterSpec": {
                "rayVersion": "2.49.2",
                "headGroupSpec": {
                    "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                    "template": template("ray-head", "500m", "2Gi"),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "cpu",
                        "replicas": 1,
                        "minReplicas": 1,
                        "maxReplicas": 1,
                        "rayStartParams": {"resources": '"{\\"speedrun-worker\\": 1}"'},
                        "template": template("ray-worker", "1", "2Gi"),
                    }
                ],
            },
        },
    }


def test_kuberay_takes_a_rayjob_on_the_real_node_to_succeeded_by_itself(
    cluster: ClusterFixture, cluster_namespace: str, real_node: RealNode
) -> None:
    assert real_node.image_set is not None
    image = real_node.image_set.images["speedrun-trainer"].ref
    started = time.monotonic()
    cluster.create(trivial_rayjob(image), cluster_namespace)

    def finished() -> dict[str, Any] | None:
        job = cluster.get("rayjob", "trivial", cluster_namespace) or {}
        status = job.get("status", {})
        return status if status.get("jobStatus") in ("SUCCEEDED", "FAILED") else None

    status = wait_for(finished, what="the RayJob to finish", timeout=300, interval=1)
    head_log = cluster.kubectl(
        "logs", "-n", cluster_namespace, "-l", "ray.io/node-type=head", "--tail=40", check=False
    )
    assert status["jobStatus"] == "SUCCEEDED", (
        f"{json.dumps(status, indent=1)}\n{head_log.stdout}{head_log.stderr}"
    )
    assert status["jobDeploymentStatus"] == "Complete", status
    pods = cluster.objects("pod", cluster_namespace)
    assert pods and all(p["spec"]["nodeName"] == NODE_NAME for p in pods)
    print(f"[e2e] trivial RayJob (head + one worker) SUCCEEDED in {time.monotonic() - started:.0f} s")
