"""The API client the operator, the trainer and the CLI share: credentials found as kubectl finds them, and
JSON calls that name their writer, against an HTTP server on loopback."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from speedrun_operator.api import GROUP, VERSION
from speedrun_operator.kube_client import (
    MERGE_PATCH,
    ApiError,
    ConfigError,
    Credentials,
    KubeApi,
    custom_path,
    in_cluster_credentials,
    kubeconfig_credentials,
)

pytestmark = pytest.mark.unit


class ApiServer:
    """Answers each request from ``answers`` (path -> (status, body)) and records what it was sent."""

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.seen: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.seen.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                queued = server.answers.get(self.path) or [(200, {})]
                status, answer = queued.pop(0) if len(queued) > 1 else queued[0]
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[ApiServer]:
    api = ApiServer()
    yield api
    api.httpd.shutdown()


JOB = custom_path(GROUP, VERSION, "team-a", "speedrunjobs", "run-1")
STATUS = custom_path(GROUP, VERSION, "team-a", "speedrunjobs", "run-1", "status")


def test_a_call_sends_json_as_its_writer_with_the_token_and_returns_the_answer(server: ApiServer) -> None:
    server.answers[STATUS] = [(200, {"status": {"phase": "Running"}})]
    api = KubeApi("speedrun-trainer", credentials=lambda: Credentials(server=server.url, token="t0ken"))
    stored = api.request("PATCH", STATUS, {"status": {"phase": "Running"}}, content_type=MERGE_PATCH)
    assert stored == {"status": {"phase": "Running"}}
    (sent,) = server.seen
    assert sent["method"] == "PATCH"
    assert sent["path"] == f"/apis/{GROUP}/{VERSION}/namespaces/team-a/speedrunjobs/run-1/status"
    assert sent["headers"]["Content-Type"] == MERGE_PATCH
    assert sent["headers"]["Authorization"] == "Bearer t0ken"
    # The API server names the field manager after the user agent's first word.
    assert sent["headers"]["User-Agent"].startswith("speedrun-trainer/")
    assert json.loads(sent["body"]) == {"status": {"phase": "Running"}}


def test_an_error_status_raises_with_the_servers_reason_and_message(server: ApiServer) -> None:
    refusal = {"kind": "Status", "reason": "AlreadyExists", "message": 'rayjobs "run-1" already exists'}
    server.answers["/apis/ray.io/v1/namespaces/team-a/rayjobs"] = [(409, refusal)]
    api = KubeApi("speedrun-operator", credentials=lambda: Credentials(server=server.url))
    with pytest.raises(ApiError) as raised:
        api.request("POST", "/apis/ray.io/v1/namespaces/team-a/rayjobs", {"metadata": {"name": "run-1"}})
    assert (raised.value.status, raised.value.reason) == (409, "AlreadyExists")
    assert str(raised.value) == 'HTTP 409 AlreadyExists: rayjobs "run-1" already exists'


def test_a_401_loads_the_credentials_again_once_as_a_rotated_token_needs(server: ApiServer) -> None:
    server.answers[JOB] = [(401, {"reason": "Unauthorized"}), (200, {"metadata": {"name": "run-1"}})]
    tokens = iter(["expired", "rotated"])
    api = KubeApi("speedrun-operator", credentials=lambda: Credentials(server=server.url, token=next(tokens)))
    assert api.request("GET", JOB) == {"metadata": {"name": "run-1"}}
    assert [s["headers"]["Authorization"] for s in server.seen] == ["Bearer expired", "Bearer rotated"]


def test_a_401_with_fresh_credentials_too_is_an_error(server: ApiServer) -> None:
    server.answers[JOB] = [(401, {"reason": "Unauthorized", "message": "token expired"})]
    api = KubeApi("speedrun-operator", credentials=lambda: Credentials(server=server.url, token="bad"))
    with pytest.raises(ApiError, match="HTTP 401 Unauthorized: token expired"):
        api.request("GET", JOB)
    assert len(server.seen) == 2


# --- where the credentials come from ---------------------------------------------------------------------


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def kubeconfig(context: str, cluster: dict[str, Any], user: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "current-context": context,
        "contexts": [{"name": context, "context": {"cluster": context, "user": context, **extra}}],
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": user}],
    }


def test_kubeconfig_files_merge_as_kubectl_merges_them(tmp_path: Path) -> None:
    first = write_config(
        tmp_path / "a" / "config",
        kubeconfig(
            "dev",
            {"server": "https://dev.example:6443/", "certificate-authority": "ca.crt"},
            {"tokenFile": "token"},
            namespace="team-a",
        ),
    )
    (tmp_path / "a" / "token").write_text("from-file\n")
    second = write_config(
        tmp_path / "b" / "config",
        kubeconfig("prod", {"server": "https://prod.example"}, {"token": "prod"}),
    )
    found = kubeconfig_credentials({"KUBECONFIG": f"{first}:{tmp_path / 'absent'}:{second}"})
    # The first file's current-context wins; paths are relative to the file that names them.
    assert found == Credentials(
        server="https://dev.example:6443",
        ca_file=str(tmp_path / "a" / "ca.crt"),
        token="from-file",
        namespace="team-a",
    )


def test_inline_certificates_are_decoded_and_client_keys_kept_in_private_files(tmp_path: Path) -> None:
    import base64

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    config = write_config(
        tmp_path / "config",
        kubeconfig(
            "local",
            {"server": "https://127.0.0.1:6443", "certificate-authority-data": b64("CA PEM")},
            {"client-certificate-data": b64("CERT PEM"), "client-key-data": b64("KEY PEM")},
        ),
    )
    found = kubeconfig_credentials({"KUBECONFIG": str(config)})
    assert found.ca_pem == "CA PEM"
    assert found.cert_file is not None and found.key_file is not None
    assert Path(found.cert_file).read_text() == "CERT PEM"
    assert Path(found.key_file).read_text() == "KEY PEM"
    assert stat.S_IMODE(Path(found.key_file).stat().st_mode) == 0o600


def test_an_exec_plugin_supplies_the_token_as_gke_gcloud_auth_plugin_does(tmp_path: Path) -> None:
    plugin = tmp_path / "bin" / "auth-plugin"
    plugin.parent.mkdir()
    # Echoes the cluster it was told of and the env var the kubeconfig set, so both are seen to reach it.
    plugin.write_text(
        "#!/bin/sh\n"
        'printf \'{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", '
        '"status": {"token": "%s-%s"}}\' "$PLUGIN_PREFIX" '
        '"$(printf %s "$KUBERNETES_EXEC_INFO" | grep -c ExecCredential)"\n'
    )
    plugin.chmod(0o755)
    config = write_config(
        tmp_path / "config",
        kubeconfig(
            "gke",
            {"server": "https://34.1.2.3"},
            {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": "bin/auth-plugin",
                    "env": [{"name": "PLUGIN_PREFIX", "value": "ya29"}],
                }
            },
        ),
    )
    assert kubeconfig_credentials({"KUBECONFIG": str(config)}).token == "ya29-1"


def test_a_failing_exec_plugin_is_an_error_naming_it_and_its_last_words(tmp_path: Path) -> None:
    plugin = tmp_path / "auth-plugin"
    plugin.write_text("#!/bin/sh\necho 'run gcloud auth login' >&2\nexit 3\n")
    plugin.chmod(0o755)
    config = write_config(
        tmp_path / "config",
        kubeconfig("gke", {"server": "https://34.1.2.3"}, {"exec": {"command": str(plugin)}}),
    )
    with pytest.raises(ConfigError, match=r"exec plugin '.*auth-plugin' exited 3: run gcloud auth login"):
        kubeconfig_credentials({"KUBECONFIG": str(config)})


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"contexts": []}, "no current-context"),
        ({"current-context": "gone"}, "no context named 'gone'"),
        (kubeconfig("dev", {}, {}), "cluster 'dev' has no server"),
        (
            kubeconfig("old", {"server": "https://x"}, {"auth-provider": {"name": "gcp"}}),
            "auth-provider, which kubectl dropped too; use its exec plugin",
        ),
    ],
)
def test_an_unusable_kubeconfig_is_an_error_naming_the_file_and_what_is_missing(
    tmp_path: Path, config: dict[str, Any], says: str
) -> None:
    path = write_config(tmp_path / "config", config)
    with pytest.raises(ConfigError, match=f"^{path}: .*") as raised:
        kubeconfig_credentials({"KUBECONFIG": str(path)})
    assert says in str(raised.value)


def test_with_no_kubeconfig_at_all_the_error_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=f"no kubeconfig at {tmp_path}/.kube/config"):
        kubeconfig_credentials({})


def test_in_a_pod_the_service_account_and_the_service_environment_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "namespace").write_text("speedrun-system")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert in_cluster_credentials(tmp_path) == Credentials(
        server="https://10.96.0.1:443",
        ca_file=str(tmp_path / "ca.crt"),
        token="sa-token",
        namespace="speedrun-system",
    )
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    assert in_cluster_credentials(tmp_path).server == "https://[fd00::1]:443"  # type: ignore[union-attr]
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    assert in_cluster_credentials(tmp_path) is None
