"""The Helm chart: lint-clean, renders valid objects, refuses bad values, installs, and its RBAC is enough.

The chart's operator Deployment lands on kwok nodes, where nothing really runs. To prove its RBAC, our
operator runs here as a local process whose only credential is a TokenRequest token for the chart's operator
ServiceAccount, configured by the environment the chart's Deployment sets, and takes the GPU example through
its whole lifecycle; ``kubectl auth can-i`` then proves neither ServiceAccount can do more than the design
needs.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import socket
import ssl
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
from cryptography import x509

from fixtures.helm_chart import (
    CERT_MANAGER_CRDS,
    MONITORING_CRDS,
    chart_copy,
    documents,
    helm,
    one,
    token_kubeconfig,
)
from fixtures.operator import OperatorProcess
from fixtures.speedrunjobs import (
    apply,
    condition,
    example_manifest,
    marin_results_json,
    phase_is,
    pods_on_nodes,
    rayjobs,
    set_rayjob_status,
    wait_srj,
)
from fixtures.storage import GcsEmulator
from harness import processes
from harness.cluster import wait_for
from harness.pytest_plugin import ClusterFixture
from speedrun_operator.handlers.webhook import HANDLER_ID

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
PEERING_CRDS = ROOT / "crds" / "kopf-peering.yaml"
GCP_SA = "speedrun-trainer@my-project.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chart_copy(tmp_path_factory.mktemp("chart"))


@pytest.fixture(scope="module")
def helm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm-home")


@pytest.fixture(scope="module")
def chart_crds(speedrun_crd: ClusterFixture) -> ClusterFixture:
    """The CRDs the chart's objects need: SpeedrunJob, kopf peering, Prometheus operator's, cert-manager's."""
    speedrun_crd.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(PEERING_CRDS))
    stand_ins = [*MONITORING_CRDS, *CERT_MANAGER_CRDS]
    listed = {"apiVersion": "v1", "kind": "List", "items": stand_ins}
    speedrun_crd.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(listed))
    names = ["clusterkopfpeerings.kopf.dev", *(crd["metadata"]["name"] for crd in stand_ins)]
    speedrun_crd.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names))
    return speedrun_crd


# ---------------------------------------------------------------------------------------------------------
# Lint, render, schema: no cluster needed except for the server-side dry run.


def test_helm_lint_is_clean(chart: Path, helm_home: Path) -> None:
    result = helm(helm_home, "lint", "--strict", str(chart))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_lint_of_the_chart_as_committed_only_misses_the_unvendored_optional_dependency(
    helm_home: Path,
) -> None:
    from fixtures.helm_chart import CHART

    result = helm(helm_home, "lint", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in result.stdout.splitlines() if "[WARNING]" in line or "[ERROR]" in line]
    assert warnings == [f"[WARNING] {CHART}: chart directory is missing these dependencies: kuberay-operator"]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {var["name"]: var.get("value", "") for var in container["env"]}


def operator_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = one(objects, "ClusterRole")["rules"]
    return rules


def resources_in(rules: list[dict[str, Any]]) -> set[str]:
    return {resource for rule in rules for resource in rule["resources"]}


def check_defaults(objects: list[dict[str, Any]], release: str, namespace: str) -> None:
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert f"--peering={release}" in container["args"]
    assert "--liveness=http://0.0.0.0:8081/healthz" in container["args"]
    assert "--webhook-port=9443" in container["args"]
    assert one(objects, "ClusterKopfPeering", release)
    probe = container["livenessProbe"]["httpGet"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert probe["path"] == "/healthz" and ports[probe["port"]] == 8081 and ports["metrics"] == 8080
    # Ready once its webhook listens: only then does the webhook Service send it the API server's calls.
    assert container["readinessProbe"]["tcpSocket"] == {"port": "webhook"} and ports["webhook"] == 9443
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 1000
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in pod["volumes"]
    env = env_of(container)
    assert env["SPEEDRUN_TRAINING_SERVICE_ACCOUNT"] == "speedrun-training"
    assert env["SPEEDRUN_METRICS_PORT"] == "8080"
    assert {"SPEEDRUN_DEFAULT_IMAGE", "SPEEDRUN_DEFAULT_OUTPUT"} <= set(env)
    assert env["SPEEDRUN_WEBHOOK_CERT_DIR"] == "/etc/speedrun/webhook"
    assert "SPEEDRUN_CPU_WORKER_REQUEST" not in env  # CPU hosts request what they are limited to

    service = one(objects, "Service", f"{release}-speedrun-operator-metrics")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    selector = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= selector.items()
    assert not [o for o in objects if o["kind"] == "ServiceMonitor"]

    rule = one(objects, "PrometheusRule")
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert set(alerts) == {"SpeedrunJobsFailing", "SpeedrunJobsStuckProvisioning", "SpeedrunOperatorDown"}
    assert 'to_phase="Failed"' in alerts["SpeedrunJobsFailing"]["expr"]
    assert 'speedrun_jobs{job="' in alerts["SpeedrunJobsStuckProvisioning"]["expr"]
    assert f'namespace="{namespace}"' in alerts["SpeedrunOperatorDown"]["expr"]

    dashboard = one(objects, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = json.loads(dashboard["data"]["speedrun-operator.json"])["panels"]
    assert len(panels) >= 6

    check_webhook_served_with_helms_certificate(objects, release, namespace)

    rules = operator_rules(objects)
    # The chart registers the webhook: the operator may not write webhook configurations (whoever may can
    # intercept every request to the API server).
    assert "validatingwebhookconfigurations" not in resources_in(rules)
    assert not {"secrets", "configmaps", "*"} & resources_in(rules)
    # Pods only watched (why a cluster does not start); KubeRay makes and deletes them.
    pod_verbs = {verb for rule in rules if "pods" in rule["resources"] for verb in rule["verbs"]}
    assert pod_verbs == {"list", "watch"}
    trainer_sa = one(objects, "ServiceAccount", "speedrun-training")
    assert trainer_sa["metadata"]["namespace"] == namespace
    assert "annotations" not in trainer_sa["metadata"]
    role = one(objects, "Role")
    assert role["rules"] == [
        {"apiGroups": ["speedrun.marin.community"], "resources": ["speedrunjobs"], "verbs": ["get"]},
        {"apiGroups": ["speedrun.marin.community"], "resources": ["speedrunjobs/status"], "verbs": ["patch"]},
    ]


def webhook_configuration(objects: list[dict[str, Any]], release: str, namespace: str) -> dict[str, Any]:
    """The one webhook of the chart's configuration, after checking it calls the operator's handler."""
    configuration = one(objects, "ValidatingWebhookConfiguration", f"{release}-speedrun-operator-{namespace}")
    (webhook,) = configuration["webhooks"]
    assert webhook["clientConfig"]["service"] == {
        "name": f"{release}-speedrun-operator-webhook",
        "namespace": namespace,
        "port": 9443,
        "path": f"/{HANDLER_ID}",
    }
    assert webhook["failurePolicy"] == "Fail" and webhook["sideEffects"] == "None"
    assert webhook["rules"] == [
        {
            "apiGroups": ["speedrun.marin.community"],
            "apiVersions": ["*"],
            "resources": ["speedrunjobs"],
            "operations": ["CREATE"],
            "scope": "Namespaced",
        }
    ]
    service = one(objects, "Service", f"{release}-speedrun-operator-webhook")
    assert service["spec"]["ports"][0] == {
        "name": "webhook",
        "port": 9443,
        "targetPort": "webhook",
        "protocol": "TCP",
    }
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "webhook-certs",
        "secret": {"secretName": f"{release}-speedrun-operator-webhook-tls"},
    } in volumes
    return configuration


def check_webhook_served_with_helms_certificate(
    objects: list[dict[str, Any]], release: str, namespace: str
) -> None:
    """No cert-manager: Helm's CA is the configuration's caBundle and signed the Secret's certificate."""
    webhook = webhook_configuration(objects, release, namespace)["webhooks"][0]
    secret = one(objects, "Secret", f"{release}-speedrun-operator-webhook-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert webhook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    served = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    served.verify_directly_issued_by(ca)
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"{release}-speedrun-operator-webhook.{namespace}.svc" in names.get_values_for_type(x509.DNSName)


def check_webhook_with_cert_manager(objects: list[dict[str, Any]], release: str, namespace: str) -> None:
    """With cert-manager's API served: its CA issues the certificate and its cainjector fills the caBundle."""
    configuration = webhook_configuration(objects, release, namespace)
    assert "caBundle" not in configuration["webhooks"][0]["clientConfig"]
    certificate = f"{release}-speedrun-operator-webhook"
    assert configuration["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": f"{namespace}/{certificate}"
    }
    served = one(objects, "Certificate", certificate)["spec"]
    assert served["secretName"] == f"{release}-speedrun-operator-webhook-tls"
    assert f"{release}-speedrun-operator-webhook.{namespace}.svc" in served["dnsNames"]
    ca_issuer = one(objects, "Issuer", served["issuerRef"]["name"])["spec"]
    ca = one(objects, "Certificate", f"{release}-speedrun-operator-webhook-ca")["spec"]
    assert ca["isCA"] and ca_issuer == {"ca": {"secretName": ca["secretName"]}}
    assert one(objects, "Issuer", ca["issuerRef"]["name"])["spec"] == {"selfSigned": {}}
    assert not [o for o in objects if o["kind"] == "Secret"]


def check_without_webhook(objects: list[dict[str, Any]], release: str, namespace: str) -> None:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert not any(arg.startswith("--webhook-port") for arg in container["args"])
    assert "SPEEDRUN_WEBHOOK_CERT_DIR" not in env_of(container)
    assert not {"ValidatingWebhookConfiguration", "Secret", "Certificate"} & {o["kind"] for o in objects}


def check_small_cpu_workers(objects: list[dict[str, Any]], release: str, namespace: str) -> None:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert env_of(container)["SPEEDRUN_CPU_WORKER_REQUEST"] == "750m"


def check_service_monitor(objects: list[dict[str, Any]], release: str, namespace: str) -> None:
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service", f"{release}-speedrun-operator-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [namespace]}


def check_workload_identity(objects: list[dict[str, Any]], release: str, namespace: str) -> None:
    accounts = [
        o for o in objects if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "speedrun-training"
    ]
    assert sorted(a["metadata"]["namespace"] for a in accounts) == [f"{namespace}-a", f"{namespace}-b"]
    assert all(a["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": GCP_SA} for a in accounts)
    bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    assert sorted((b["metadata"]["namespace"], b["subjects"][0]["namespace"]) for b in bindings) == [
        (f"{namespace}-a", f"{namespace}-a"),
        (f"{namespace}-b", f"{namespace}-b"),
    ]


@dataclass(frozen=True)
class ValueSet:
    args: Callable[[str], list[str]]
    check: Callable[[list[dict[str, Any]], str, str], None]
    extra_namespaces: tuple[str, ...] = ()


VALUE_SETS = {
    "defaults": ValueSet(lambda ns: [], check_defaults),
    "cert-manager": ValueSet(
        lambda ns: ["--api-versions", "cert-manager.io/v1/Certificate"], check_webhook_with_cert_manager
    ),
    "without webhook": ValueSet(lambda ns: ["--set", "webhook.enabled=false"], check_without_webhook),
    "small CPU workers": ValueSet(
        lambda ns: ["--set", "defaults.cpuWorkerRequest=750m"], check_small_cpu_workers
    ),
    "service-monitor": ValueSet(
        lambda ns: ["--set", "metrics.serviceMonitor.enabled=true"], check_service_monitor
    ),
    "workload-identity": ValueSet(
        lambda ns: [
            "--set",
            f"training.serviceAccount.gcpServiceAccount={GCP_SA}",
            "--set-json",
            json.dumps([f"{ns}-a", f"{ns}-b"]).join(["training.namespaces=", ""]),
        ],
        check_workload_identity,
        extra_namespaces=("a", "b"),
    ),
}


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_each_value_set_renders_objects_the_api_server_accepts(
    value_set: str, chart: Path, helm_home: Path, chart_crds: ClusterFixture, cluster_namespace: str
) -> None:
    values = VALUE_SETS[value_set]
    release = f"r{uuid.uuid4().hex[:6]}"
    for suffix in values.extra_namespaces:
        chart_crds.kubectl("create", "namespace", f"{cluster_namespace}-{suffix}")
    try:
        rendered = helm(
            helm_home,
            "template",
            release,
            str(chart),
            "-n",
            cluster_namespace,
            "--set",
            f"peering.name={release}",
            *values.args(cluster_namespace),
        )
        assert rendered.returncode == 0, rendered.stderr
        objects = documents(rendered.stdout)
        values.check(objects, release, cluster_namespace)
        dry_run = chart_crds.kubectl(
            "apply",
            "--dry-run=server",
            "--server-side",
            "-f",
            "-",
            input=rendered.stdout,
            check=False,
        )
        assert dry_run.returncode == 0, dry_run.stderr
        assert dry_run.stdout.count("serverside-applied (server dry run)") == len(objects)
    finally:
        for suffix in values.extra_namespaces:
            chart_crds.kubectl("delete", "namespace", f"{cluster_namespace}-{suffix}", "--wait=false")


BAD_VALUES = {
    "replicaCount=0": (["--set", "replicaCount=0"], "/replicaCount"),
    "two replicas without peering": (["--set", "peering.enabled=false"], "allOf"),
    "a certificate source the chart does not know": (
        ["--set", "webhook.certificate=vault"],
        "/webhook/certificate",
    ),
    "output not in object storage": (["--set", "defaults.output=/tmp/runs"], "/defaults/output"),
    "writable root filesystem": (
        ["--set", "securityContext.readOnlyRootFilesystem=false"],
        "readOnlyRootFilesystem",
    ),
    "a misspelt key": (["--set", "replicas=3"], "replicas"),
    "an unknown pull policy": (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    "a GCP service account that is not one": (
        ["--set", "training.serviceAccount.gcpServiceAccount=trainer@example.com"],
        "/training/serviceAccount/gcpServiceAccount",
    ),
    "a metrics port out of range": (["--set", "metrics.port=70000"], "/metrics/port"),
    "a CPU request that is not a quantity": (
        ["--set", "defaults.cpuWorkerRequest=one core"],
        "/defaults/cpuWorkerRequest",
    ),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_values_that_break_the_schema_are_refused_naming_the_value(
    case: str, chart: Path, helm_home: Path
) -> None:
    args, where = BAD_VALUES[case]
    result = helm(helm_home, "template", "bad", str(chart), *args)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert where in result.stderr, result.stderr


def test_install_refuses_bad_values_and_leaves_nothing_behind(
    chart: Path, helm_home: Path, chart_crds: ClusterFixture, cluster_namespace: str
) -> None:
    result = helm(
        helm_home,
        "install",
        "bad",
        str(chart),
        "-n",
        cluster_namespace,
        "--set",
        "replicaCount=-1",
        kubeconfig=chart_crds.kubeconfig,
    )
    assert result.returncode != 0 and "/replicaCount" in result.stderr
    assert chart_crds.objects("deployments", cluster_namespace) == []
    listed = helm(helm_home, "list", "-n", cluster_namespace, "-q", kubeconfig=chart_crds.kubeconfig)
    assert listed.stdout.strip() == ""


# ---------------------------------------------------------------------------------------------------------
# A real install, then our operator with the chart's operator ServiceAccount's credentials.


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    other_namespace: str
    peering: str
    operator_account: str
    training_account: str


@pytest.fixture(scope="module")
def release(
    chart: Path, helm_home: Path, chart_crds: ClusterFixture, gcs_emulator: GcsEmulator
) -> Iterator[Release]:
    suffix = uuid.uuid4().hex[:6]
    installed = Release(
        name=f"sr{suffix}",
        namespace=f"speedrun-{suffix}",
        other_namespace=f"other-{suffix}",
        peering=f"speedrun-{suffix}",
        operator_account=f"sr{suffix}-speedrun-operator",
        training_account="speedrun-training",
    )
    for namespace in (installed.namespace, installed.other_namespace):
        chart_crds.kubectl("create", "namespace", namespace)
    result = helm(
        helm_home,
        "install",
        installed.name,
        str(chart),
        "-n",
        installed.namespace,
        "--set",
        f"peering.name={installed.peering}",
        "--set",
        f"defaults.output={gcs_emulator.url('runs')}",
        "--set",
        "defaults.trainerImage=speedrun-trainer:test",
        "--set",
        f"training.serviceAccount.gcpServiceAccount={GCP_SA}",
        # Its pods are kwok's and serve nothing: a webhook configuration pointing at them would make the API
        # server refuse every SpeedrunJob while the release is installed.
        "--set",
        "webhook.enabled=false",
        kubeconfig=chart_crds.kubeconfig,
    )
    assert result.returncode == 0, result.stderr
    try:
        yield installed
    finally:
        helm(
            helm_home,
            "uninstall",
            installed.name,
            "-n",
            installed.namespace,
            kubeconfig=chart_crds.kubeconfig,
        )
        for namespace in (installed.namespace, installed.other_namespace):
            chart_crds.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_install_puts_both_operator_replicas_on_kwok_nodes(release: Release, cluster: ClusterFixture) -> None:
    selector = f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component=operator"

    def scheduled() -> list[tuple[dict[str, Any], dict[str, Any]]] | None:
        pairs = pods_on_nodes(cluster, release.namespace, selector)
        return pairs if len(pairs) == 2 else None

    pairs = wait_for(scheduled, what="both operator pods bound to nodes", timeout=60)
    for pod, node in pairs:
        assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
        assert pod["spec"]["serviceAccountName"] == release.operator_account
    peering = cluster.get("clusterkopfpeering.kopf.dev", release.peering)
    assert peering is not None and peering["metadata"]["labels"]["app.kubernetes.io/instance"] == release.name
    trainer = cluster.get("serviceaccount", release.training_account, release.namespace)
    assert trainer is not None
    assert trainer["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == GCP_SA


def running(process: OperatorProcess) -> bool:
    return process.popen is not None and process.popen.poll() is None


def admission_review(name: str, job: dict[str, Any], namespace: str) -> dict[str, Any]:
    """What the API server sends the webhook for a `kubectl apply` of ``job``, to the configuration's URL."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "speedrun.marin.community", "version": "v1alpha1", "kind": "SpeedrunJob"},
            "resource": {
                "group": "speedrun.marin.community",
                "version": "v1alpha1",
                "resource": "speedrunjobs",
            },
            "operation": "CREATE",
            "namespace": namespace,
            "name": name,
            "object": job,
            "userInfo": {"username": "kubernetes-admin"},
            "dryRun": False,
        },
    }


def call_webhook(configuration: dict[str, Any], port: int, review: dict[str, Any]) -> dict[str, Any]:
    """POST ``review`` as the API server would: TLS verified against the caBundle for the Service's name."""
    (webhook,) = configuration["webhooks"]
    client_config = webhook["clientConfig"]
    service = client_config["service"]
    context = ssl.create_default_context(cadata=base64.b64decode(client_config["caBundle"]).decode())
    hostname = f"{service['name']}.{service['namespace']}.svc"
    connection = http.client.HTTPConnection(hostname, port, timeout=30)
    connection.sock = context.wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=30), server_hostname=hostname
    )
    connection.request("POST", service["path"], json.dumps(review), {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200, response.read()
    answer: dict[str, Any] = json.loads(response.read())["response"]
    return answer


def test_the_charts_webhook_is_served_with_its_certificate_and_refuses_bad_jobs_without_webhook_rbac(
    chart: Path,
    helm_home: Path,
    chart_crds: ClusterFixture,
    operator: OperatorProcess,
    cluster_namespace: str,
    tmp_path: Path,
) -> None:
    """A release with its webhook on (the default) and Helm's certificate; our operator with the operator SA's
    token, the Deployment's configuration and the chart's Secret mounted as files serves it on loopback.

    The API server reaches the webhook through its Service, which needs a real node's pods (the e2e tier
    shows that); here the test calls the configuration's path as the API server would, verifying the
    server's certificate against the configuration's caBundle for the Service's name. The session's operator
    is stopped meanwhile (and restarted only if it was running), and the release is uninstalled at the end:
    while its configuration points at pods that serve nothing, the API server refuses every SpeedrunJob.
    """
    cluster, name = chart_crds, f"wh{uuid.uuid4().hex[:6]}"
    installed = helm(
        helm_home,
        "install",
        name,
        str(chart),
        "-n",
        cluster_namespace,
        "--set",
        f"peering.name={name}",
        # "auto" would pick cert-manager: the module's stand-in CRDs serve its API (not its controllers).
        "--set",
        "webhook.certificate=helm",
        kubeconfig=cluster.kubeconfig,
    )
    assert installed.returncode == 0, installed.stderr
    was_running = running(operator)
    operator.stop()
    webhook_operator: OperatorProcess | None = None
    try:
        account = f"{name}-speedrun-operator"
        user = f"system:serviceaccount:{cluster_namespace}:{account}"
        for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
            for verb in ("create", "patch", "delete"):
                assert not can_i(cluster, user, verb, f"{kind}.admissionregistration.k8s.io", None), verb
        configuration = cluster.get(
            "validatingwebhookconfiguration", f"{name}-speedrun-operator-{cluster_namespace}"
        )
        assert configuration is not None

        deployment = cluster.get("deployment", account, cluster_namespace)
        assert deployment is not None
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "webhook-certs"]
        secret = cluster.get("secret", f"{name}-speedrun-operator-webhook-tls", cluster_namespace)
        assert secret is not None
        certs = tmp_path / "certs"
        certs.mkdir()
        for key, value in secret["data"].items():
            (certs / key).write_bytes(base64.b64decode(value))
        env = env_of(container)
        assert env["SPEEDRUN_WEBHOOK_CERT_DIR"] == mount["mountPath"]
        metrics_port, webhook_port = processes.free_ports(2)
        env = {
            **{k: v for k, v in operator.env.items() if not k.startswith("SPEEDRUN_")},
            **env,
            "KUBECONFIG": str(token_kubeconfig(cluster, cluster_namespace, account, tmp_path / "kubeconfig")),
            "SPEEDRUN_METRICS_PORT": str(metrics_port),
            "SPEEDRUN_LISTEN_ADDRESS": "127.0.0.1",
            "SPEEDRUN_WEBHOOK_CERT_DIR": str(certs),
        }
        args = [arg for arg in container["args"] if not arg.startswith("--liveness")]
        assert args == [f"--peering={name}", "--webhook-port=9443"]
        webhook_operator = dataclasses.replace(
            operator,
            log=tmp_path / "operator.log",
            env=env,
            metrics_port=metrics_port,
            popen=None,
            pids=[],
            args=(f"--peering={name}", f"--webhook-port={webhook_port}"),
        )
        webhook_operator.start()

        bad = example_manifest(
            "tpu-v4-8.yaml", name="rejected", train={"batchSize": 30, "steps": 10, "learningRate": 0.1}
        )
        review = admission_review("rejected", bad, cluster_namespace)
        refused = wait_for(
            lambda: call_webhook(configuration, webhook_port, review), what="the webhook serving", timeout=60
        )
        assert refused["allowed"] is False and refused["uid"] == review["request"]["uid"]
        message = refused["status"]["message"]
        assert "spec.train.batchSize: must be divisible by the number of chips of v4-8" in message
        good = example_manifest("tpu-v4-8.yaml", name="admitted")
        admitted = call_webhook(
            configuration, webhook_port, admission_review("admitted", good, cluster_namespace)
        )
        assert admitted["allowed"] is True
        log = webhook_operator.log.read_text()
        assert "Forbidden" not in log and "Not enough RBAC" not in log, webhook_operator.log_tail()
    finally:
        if webhook_operator is not None:
            webhook_operator.stop()
        helm(helm_home, "uninstall", name, "-n", cluster_namespace, kubeconfig=cluster.kubeconfig)
        if was_running:
            operator.start()


def terminating_namespaces(cluster: ClusterFixture) -> list[str]:
    return [
        ns["metadata"]["name"]
        for ns in cluster.objects("namespace")
        if ns.get("status", {}).get("phase") == "Terminating"
    ]


@pytest.fixture(scope="module")
def chart_operator(
    release: Release,
    operator: OperatorProcess,
    cluster: ClusterFixture,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """Our operator, configured as the chart's Deployment configures it, with the operator SA's token only.

    The session's standalone operator (admin credentials) is stopped meanwhile and restarted afterwards.
    """
    directory = tmp_path_factory.mktemp("chart-operator")
    kubeconfig = token_kubeconfig(
        cluster, release.namespace, release.operator_account, directory / "kubeconfig"
    )
    deployment = cluster.get("deployment", f"{release.name}-speedrun-operator", release.namespace)
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (port,) = processes.free_ports(1)
    env = {
        **{k: v for k, v in operator.env.items() if not k.startswith("SPEEDRUN_")},
        **env_of(container),
        "KUBECONFIG": str(kubeconfig),
        "SPEEDRUN_METRICS_PORT": str(port),  # the chart's 8080 is the pod's; here it must be a free one
        "SPEEDRUN_LISTEN_ADDRESS": "127.0.0.1",
        "SPEEDRUN_PEERING_LIFETIME_SECONDS": "10",
    }
    args = tuple(arg for arg in container["args"] if not arg.startswith("--liveness"))
    assert args == (f"--peering={release.peering}",)
    process = dataclasses.replace(
        operator,
        kubeconfig=kubeconfig,
        log=directory / "operator.log",
        env=env,
        metrics_port=port,
        args=(*args, "--priority", "1000"),
        popen=None,
        pids=[],
    )
    # Earlier tests' namespaces may still be going away; the API server refuses new objects there with a 403
    # that is no RBAC gap. The session operator clears their jobs' finalizers before it hands over.
    wait_for(
        lambda: not terminating_namespaces(cluster),
        what="earlier tests' namespaces to finish deleting",
        timeout=180,
    )
    operator.stop()
    try:
        process.start()
        yield process
    finally:
        process.stop()
        operator.start()


def test_the_gpu_example_completes_its_lifecycle_under_the_charts_rbac(
    chart_operator: OperatorProcess, release: Release, cluster: ClusterFixture, gcs_emulator: GcsEmulator
) -> None:
    namespace, name = release.namespace, "hello-a100-rbac"
    whoami = cluster.kubectl("--kubeconfig", str(chart_operator.kubeconfig), "auth", "whoami", "-o", "json")
    username = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert username == f"system:serviceaccount:{namespace}:{release.operator_account}"

    apply(cluster, namespace, example_manifest("marin-hello-world-a100.yaml", name=name))
    job = wait_srj(
        cluster,
        namespace,
        name,
        lambda s: s.get("phase") == "Provisioning" and "rayJobName" in s,
        "Provisioning with a RayJob",
    )
    rayjob = job["status"]["rayJobName"]
    (created,) = rayjobs(cluster, namespace)
    assert created["metadata"]["name"] == rayjob
    cluster_spec = created["spec"]["rayClusterSpec"]
    for group in [cluster_spec["headGroupSpec"], *cluster_spec["workerGroupSpecs"]]:
        assert group["template"]["spec"]["serviceAccountName"] == release.training_account

    job = wait_srj(
        cluster, namespace, name, lambda s: "rayClusterName" in s, "the RayCluster's name", timeout=120
    )
    set_rayjob_status(cluster, namespace, rayjob, {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"})
    job = wait_srj(cluster, namespace, name, phase_is("Running"), "Running")
    assert condition(job["status"], "Running")["status"] == "True"  # type: ignore[index]

    with fsspec.open(gcs_emulator.url("runs", name, "speedrun_results.json"), "w") as handle:
        handle.write(marin_results_json(1.5))
    set_rayjob_status(
        cluster,
        namespace,
        rayjob,
        {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "endTime": "2026-11-25T12:00:00Z"},
    )
    job = wait_srj(cluster, namespace, name, lambda s: "results" in s, "Succeeded with results")
    assert job["status"]["phase"] == "Succeeded" and job["status"]["results"]["evalBpb"] == 1.5
    assert condition(job["status"], "ResultsPublished")["status"] == "True"  # type: ignore[index]
    events = cluster.objects("events", namespace, field_selector=f"involvedObject.name={name}")
    assert {"RayJobCreated", "Succeeded", "ResultsPublished"} <= {e["reason"] for e in events}

    peering = cluster.get("clusterkopfpeering.kopf.dev", release.peering)
    assert peering is not None and len(peering.get("status", {})) >= 1, "the replica's heartbeat is missing"
    metrics = chart_operator.metrics()
    # Other tests' jobs may vanish under it (404/409 in a shared cluster); what RBAC must never cause is 403.
    assert 'code="403"' not in metrics, "an API call was forbidden"
    log = chart_operator.log.read_text()
    assert "Forbidden" not in log and "Not enough RBAC" not in log, chart_operator.log_tail()


def can_i(cluster: ClusterFixture, user: str, verb: str, resource: str, namespace: str | None) -> bool:
    """``kubectl auth can-i`` as ``user``; ``resource#sub`` asks about a subresource, None any namespace."""
    resource, _, subresource = resource.partition("#")
    if resource == WORKLOADS:
        plural, group = resource.split(".", 1)
        return review(cluster, user, verb, group, plural, namespace)
    args = ["auth", "can-i", verb, resource, f"--as={user}"]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    args += [f"--subresource={subresource}"] if subresource else []
    result = cluster.kubectl(*args, check=False)
    assert result.stdout.strip() in {"yes", "no"}, result.stderr
    return result.stdout.strip() == "yes"


def review(
    cluster: ClusterFixture, user: str, verb: str, group: str, resource: str, namespace: str | None
) -> bool:
    """A SubjectAccessReview: RBAC's answer for a resource whose API this cluster may not serve (Kueue's,
    installed only once a test starts Kueue), which ``kubectl auth can-i`` cannot resolve without it."""
    attributes = {
        "verb": verb,
        "group": group,
        "resource": resource,
        **({"namespace": namespace} if namespace else {}),
    }
    answer = cluster.create(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": ["system:serviceaccounts"], "resourceAttributes": attributes},
        }
    )
    return bool(answer["status"].get("allowed"))


SRJ, RAY = "speedrunjobs.speedrun.marin.community", "rayjobs.ray.io"
SRJ_STATUS = f"{SRJ}#status"
WORKLOADS = "workloads.kueue.x-k8s.io"


def test_the_operator_account_can_do_what_the_design_needs_and_no_more(
    release: Release, cluster: ClusterFixture
) -> None:
    user = f"system:serviceaccount:{release.namespace}:{release.operator_account}"
    anywhere, other = None, release.other_namespace
    expected = {
        # What the design needs, in any namespace: it watches SpeedrunJobs cluster-wide.
        ("watch", SRJ, anywhere): True,
        ("patch", SRJ, other): True,
        ("patch", SRJ_STATUS, other): True,
        ("create", RAY, other): True,
        ("delete", RAY, other): True,
        ("watch", RAY, anywhere): True,
        ("create", "events", other): True,
        ("list", "customresourcedefinitions.apiextensions.k8s.io", None): True,
        # Kueue's Workloads: followed, and deactivated/activated (spec.active) for a queued run's suspend.
        ("watch", WORKLOADS, anywhere): True,
        ("patch", WORKLOADS, other): True,
        ("create", WORKLOADS, other): False,
        ("delete", WORKLOADS, other): False,
        ("patch", f"clusterkopfpeerings.kopf.dev/{release.peering}", None): True,
        # No secrets, anywhere, in any way.
        ("get", "secrets", other): False,
        ("list", "secrets", anywhere): False,
        ("watch", "secrets", release.namespace): False,
        # Users delete SpeedrunJobs, never the operator, nor does it write their spec wholesale; it creates
        # only a ladder's rungs, wherever ladders are applied.
        ("create", SRJ, other): True,
        ("delete", SRJ, other): False,
        ("update", SRJ, other): False,
        # No pods, RayClusters or workloads of its own: KubeRay makes those.
        ("create", "pods", other): False,
        ("create", "rayclusters.ray.io", other): False,
        ("create", "deployments.apps", release.namespace): False,
        ("create", "serviceaccounts/token", release.namespace): False,
        # No cluster-wide writes beyond its peering heartbeat.
        ("patch", "clusterkopfpeerings.kopf.dev/someone-else", None): False,
        ("create", "clusterkopfpeerings.kopf.dev", None): False,
        ("create", "customresourcedefinitions.apiextensions.k8s.io", None): False,
        ("patch", "customresourcedefinitions.apiextensions.k8s.io", None): False,
        ("create", "validatingwebhookconfigurations.admissionregistration.k8s.io", None): False,
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", None): False,
        ("patch", "namespaces", None): False,
        ("impersonate", "serviceaccounts", other): False,
    }
    actual = {key: can_i(cluster, user, *key) for key in expected}
    assert actual == expected


def test_the_training_account_reaches_its_own_speedrunjobs_only(
    release: Release, cluster: ClusterFixture
) -> None:
    user = f"system:serviceaccount:{release.namespace}:{release.training_account}"
    own, other = release.namespace, release.other_namespace
    expected = {
        ("get", SRJ, own): True,
        ("patch", SRJ_STATUS, own): True,
        # Not the spec, not the list, not another namespace.
        ("patch", SRJ, own): False,
        ("list", SRJ, own): False,
        ("delete", SRJ, own): False,
        ("get", SRJ, other): False,
        ("patch", SRJ_STATUS, other): False,
        ("list", SRJ, None): False,
        # Not the RayJobs, not Secrets, not pods.
        ("get", RAY, own): False,
        ("patch", RAY, own): False,
        ("delete", RAY, own): False,
        ("get", "secrets", own): False,
        ("create", "pods", own): False,
    }
    actual = {key: can_i(cluster, user, *key) for key in expected}
    assert actual == expected
