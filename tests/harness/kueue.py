"""Kueue's manager beside the local cluster, for the tests that ask for it (``LocalCluster.start_kueue``).

Kueue runs as one more child process: its CRDs are applied straight from its module in the Go module cache,
its webhooks listen on 127.0.0.1 with a certificate from the cluster's CA and are registered by URL (a
Service cannot point at loopback: the API server refuses 127.0.0.0/8 endpoints). Only the webhooks of what
this Kueue serves are registered: Kueue's own kinds and the RayJob integration, the one framework enabled.
Its RayJob webhooks see only RayJobs that carry a queue label, so tests sharing the session's cluster never
wait on Kueue for the RayJobs Kueue would leave alone anyway (manageJobsWithoutQueueName is false).

With its own certificate management off, Kueue 0.17 reads its metrics server's certificate from a fixed
path, /etc/kueue/metrics/certs (cmd/kueue/main.go). The harness gives it one there in a mount namespace of
its own: an overlay over /etc, so the machine's /etc is never written. That needs root, as the real node does.
"""

from __future__ import annotations

import base64
import copy
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from harness import build, versions

NAMESPACE = "kueue-system"
FRAMEWORKS = ("ray.io/rayjob",)
KUEUE_GROUP = "kueue.x-k8s.io"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
WEBHOOK_MANIFESTS = "config/components/webhook/manifests.yaml"
CONFIGURATION_NAMES = {
    "MutatingWebhookConfiguration": "kueue-mutating-webhook-configuration",
    "ValidatingWebhookConfiguration": "kueue-validating-webhook-configuration",
}
METRICS_CERT_DIR = "/etc/kueue/metrics/certs"

# Runs inside `unshare --mount`: /etc gets an overlay whose upper layer (on a tmpfs of the namespace's own)
# holds the metrics certificate, then the shell becomes Kueue. Both mounts vanish with the namespace.
_ETC_OVERLAY = """\
set -eu
mount -t tmpfs -o size=1m,mode=0700 speedrun-kueue "$KUEUE_ETC_LAYER"
mkdir -p "$KUEUE_ETC_LAYER/upper/kueue/metrics/certs" "$KUEUE_ETC_LAYER/work"
cp "$KUEUE_METRICS_CERT" "$KUEUE_ETC_LAYER/upper/kueue/metrics/certs/tls.crt"
cp "$KUEUE_METRICS_KEY" "$KUEUE_ETC_LAYER/upper/kueue/metrics/certs/tls.key"
mount -t overlay speedrun-kueue-etc \\
  -o "lowerdir=/etc,upperdir=$KUEUE_ETC_LAYER/upper,workdir=$KUEUE_ETC_LAYER/work" /etc
exec "$@"
"""


class KueueError(RuntimeError):
    pass


def module_root() -> Path:
    module, version = versions.KUEUE_MODULE
    return build.module_dir(module, version)


def crd_dir() -> Path:
    """Kueue's CRDs, read where the module cache keeps them (read-only; nothing is copied)."""
    path = module_root() / versions.KUEUE_CRD_DIR
    if not any(path.glob("*.yaml")):
        raise KueueError(f"no Kueue CRDs under {path}")
    return path


def crd_names(directory: Path) -> list[str]:
    return sorted(yaml.safe_load(path.read_text())["metadata"]["name"] for path in directory.glob("*.yaml"))


def configuration(
    *, health_port: int, metrics_port: int, webhook_port: int, cert_dir: Path
) -> dict[str, Any]:
    """Kueue's Configuration (config.kueue.x-k8s.io/v1beta2): loopback only, one replica, RayJobs only."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": f"127.0.0.1:{metrics_port}"},
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "manageJobsWithoutQueueName": False,
        "integrations": {"frameworks": list(FRAMEWORKS)},
        # The on-demand visibility API is an aggregated API server of its own; nothing here asks it.
        "featureGates": {"VisibilityOnDemand": False},
    }


def _served(webhook: Mapping[str, Any], frameworks: Iterable[str]) -> bool:
    """Whether this Kueue serves ``webhook``: one of Kueue's own kinds, or an enabled framework's kind."""
    kinds = {tuple(f.split("/", 1)) for f in frameworks}  # ("ray.io", "rayjob")
    for rule in webhook.get("rules", []):
        for group in rule.get("apiGroups", []):
            if group == KUEUE_GROUP:
                continue
            if not all((group, resource.rstrip("s")) in kinds for resource in rule.get("resources", [])):
                return False
    return bool(webhook.get("rules"))


def webhook_configurations(
    manifests: str, *, url: str, ca_bundle: bytes, frameworks: Iterable[str] = FRAMEWORKS
) -> list[dict[str, Any]]:
    """Kueue's own webhook configurations (its module's manifests), with what this Kueue serves only, each
    webhook called at ``url`` + its path; a framework's webhooks see only objects with a queue label."""
    frameworks = tuple(frameworks)
    configurations = []
    for document in yaml.safe_load_all(manifests):
        if not document or document.get("kind") not in CONFIGURATION_NAMES:
            continue
        config = copy.deepcopy(document)
        config["metadata"] = {"name": CONFIGURATION_NAMES[config["kind"]]}
        webhooks = []
        for webhook in config.get("webhooks", []):
            if not _served(webhook, frameworks):
                continue
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {
                "url": f"{url}{path}",
                "caBundle": base64.b64encode(ca_bundle).decode(),
            }
            if not all(g == KUEUE_GROUP for r in webhook["rules"] for g in r["apiGroups"]):
                webhook["objectSelector"] = {"matchExpressions": [{"key": QUEUE_LABEL, "operator": "Exists"}]}
            webhooks.append(webhook)
        config["webhooks"] = webhooks
        configurations.append(config)
    return configurations


def webhook_manifests_text() -> str:
    return (module_root() / WEBHOOK_MANIFESTS).read_text()


def command(
    binary: Path, *, config: Path, kubeconfig: Path, etc_layer: Path, metrics_cert: Path, metrics_key: Path
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that start Kueue in its own mount namespace (see the module's doc)."""
    if os.geteuid() != 0:
        raise KueueError(
            "Kueue 0.17 reads its metrics certificate from /etc/kueue/metrics/certs only; the harness mounts "
            "one there in a private mount namespace, which needs root: run the Kueue tests as root"
        )
    etc_layer.mkdir(parents=True, exist_ok=True)
    argv = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        _ETC_OVERLAY,
        "kueue-etc",
        str(binary),
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        "--zap-log-level=2",
    ]
    env = {
        "KUEUE_ETC_LAYER": str(etc_layer),
        "KUEUE_METRICS_CERT": str(metrics_cert),
        "KUEUE_METRICS_KEY": str(metrics_key),
    }
    return argv, env


def write_json(path: Path, data: Any) -> Path:
    """JSON is YAML: Kueue reads its configuration file with a YAML decoder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
