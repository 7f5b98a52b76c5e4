"""The Kubernetes API client the operator, the trainer and the CLI share: JSON over urllib3, as the pod's
ServiceAccount in a cluster, else as the current context of KUBECONFIG (or ~/.kube/config).

Not the official client: the operator makes a dozen kinds of call, and the ``kubernetes`` package keeps
about 45 MiB of generated models in memory once imported, a third of the operator's peak at a 500-job burst
(bench/operator_scale.py). A user agent names the writer: the API server names each write's field manager
after it, so managedFields tell our writes from anyone else's."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import urllib3
import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MERGE_PATCH = "application/merge-patch+json"


class ConfigError(Exception):
    """No usable credentials; the message says where it looked and what was missing."""


class ApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {status} {reason}: {message}" if message else f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and who we are to it. Certificates are files: Python's ssl loads no other."""

    server: str
    ca_file: str | None = None
    ca_pem: str | None = None
    insecure: bool = False
    token: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    namespace: str | None = None


def load_credentials() -> Credentials:
    """The pod's ServiceAccount when in a cluster, else the kubeconfig's current context."""
    return in_cluster_credentials() or kubeconfig_credentials()


def in_cluster_credentials(account: Path = SERVICE_ACCOUNT) -> Credentials | None:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token = account / "token"
    if not host or not port or not token.is_file():
        return None
    namespace = account / "namespace"
    return Credentials(
        server=f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}",
        ca_file=str(account / "ca.crt"),
        token=token.read_text().strip(),
        namespace=namespace.read_text().strip() if namespace.is_file() else None,
    )


def kubeconfig_credentials(environ: Mapping[str, str] = os.environ) -> Credentials:
    """kubectl's rules: the files of KUBECONFIG (else ~/.kube/config) merged, the first of each name winning;
    paths relative to the file that names them; a token, a client certificate or an exec plugin."""
    listed = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    files = [Path(p).expanduser() for p in listed] or [Path.home() / ".kube" / "config"]
    current: str | None = None
    named: dict[str, dict[str, tuple[dict[str, Any], Path]]] = {"contexts": {}, "clusters": {}, "users": {}}
    for path in files:
        if not path.is_file():
            if listed:
                continue
            raise ConfigError(f"not in a cluster (no ServiceAccount token) and no kubeconfig at {path}")
        config = yaml.safe_load(path.read_text()) or {}
        current = current or config.get("current-context")
        for section, entries in named.items():
            for item in config.get(section) or []:
                entries.setdefault(item["name"], (item.get(section[:-1]) or {}, path.parent))
    where = os.pathsep.join(str(p) for p in files)
    if not current:
        raise ConfigError(f"{where}: no current-context (kubectl config use-context NAME)")
    context, _ = _entry(named, "contexts", current, where)
    cluster, cluster_dir = _entry(named, "clusters", context.get("cluster", ""), where)
    user, user_dir = _entry(named, "users", context.get("user", ""), where)
    if user.get("exec"):
        user = {**user, **_exec_credential(user["exec"], user_dir)}
    elif user.get("auth-provider"):
        raise ConfigError(
            f"{where}: user {context['user']!r} uses an auth-provider, which kubectl dropped too; "
            "use its exec plugin (gke-gcloud-auth-plugin on GKE)"
        )
    if "server" not in cluster:
        raise ConfigError(f"{where}: cluster {context['cluster']!r} has no server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (user_dir / user["tokenFile"]).read_text().strip()
    return Credentials(
        server=cluster["server"].rstrip("/"),
        ca_file=_path(cluster.get("certificate-authority"), cluster_dir),
        ca_pem=_pem(cluster.get("certificate-authority-data")),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=token,
        cert_file=_path(user.get("client-certificate"), user_dir)
        or _file(user.get("client-certificate-data")),
        key_file=_path(user.get("client-key"), user_dir) or _file(user.get("client-key-data")),
        namespace=context.get("namespace"),
    )


def _entry(
    named: dict[str, dict[str, tuple[dict[str, Any], Path]]], section: str, name: str, where: str
) -> tuple[dict[str, Any], Path]:
    if name not in named[section]:
        raise ConfigError(f"{where}: no {section[:-1]} named {name!r}")
    return named[section][name]


def _exec_credential(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    """Run the user's exec plugin (client.authentication.k8s.io) and take its token or certificate."""
    command = spec.get("command", "")
    if os.sep in command and not os.path.isabs(command):
        command = str(base / command)
    info = {"apiVersion": spec.get("apiVersion"), "kind": "ExecCredential", "spec": {"interactive": False}}
    env = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []}}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    try:
        done = subprocess.run(
            [command, *(spec.get("args") or [])], env=env, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"the kubeconfig's exec plugin {command!r} did not run: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        raise ConfigError(f"the kubeconfig's exec plugin {command!r} exited {done.returncode}: {last}")
    status = json.loads(done.stdout).get("status") or {}
    return {
        "token": status.get("token"),
        "client-certificate-data": _b64(status.get("clientCertificateData")),
        "client-key-data": _b64(status.get("clientKeyData")),
    }


def _path(value: str | None, base: Path) -> str | None:
    return str(base / value) if value else None


def _pem(data: str | None) -> str | None:
    return base64.b64decode(data).decode() if data else None


def _b64(pem: str | None) -> str | None:
    return base64.b64encode(pem.encode()).decode() if pem else None


def _file(data: str | None) -> str | None:
    """Inline certificate data as a private file (ssl.load_cert_chain reads no other), named by its content
    so loading the same kubeconfig again writes nothing new."""
    if not data:
        return None
    content = base64.b64decode(data)
    folder = Path(tempfile.gettempdir()) / f"speedrun-kube-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid():
        raise ConfigError(f"{folder} belongs to another user: remove it, or set TMPDIR")
    path = folder / f"{hashlib.sha256(content).hexdigest()[:32]}.pem"
    if not path.exists():
        fd, written = tempfile.mkstemp(dir=folder)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(written, path)
    return str(path)


def ssl_context(creds: Credentials) -> ssl.SSLContext:
    """Checks the server by the credentials' CA (else the system's); presents their client certificate."""
    context = ssl.create_default_context(cafile=creds.ca_file, cadata=creds.ca_pem)
    if creds.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if creds.cert_file:
        context.load_cert_chain(creds.cert_file, creds.key_file)
    return context


def auth_headers(creds: Credentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {creds.token}"} if creds.token else {}


class KubeApi:
    """A connection pool to the API server; keep one: each new connection pays a TLS handshake. A 401
    loads the credentials again once (ServiceAccount tokens rotate, exec plugins' tokens expire)."""

    def __init__(
        self,
        field_manager: str,
        *,
        pool_size: int = 10,
        retries: int = 3,
        credentials: Callable[[], Credentials] = load_credentials,
    ) -> None:
        self._load = credentials
        self._pool_size = pool_size
        self._retries = urllib3.Retry(total=retries, read=0, status=0, redirect=0, backoff_factor=0.1)
        self._user_agent = f"{field_manager}/{version('speedrun-operator')}"
        self._lock = threading.Lock()
        self.credentials = credentials()
        self._pool = self._connect(self.credentials)

    def _connect(self, creds: Credentials) -> urllib3.PoolManager:
        return urllib3.PoolManager(
            maxsize=self._pool_size,
            ssl_context=ssl_context(creds),
            retries=self._retries,
            timeout=urllib3.Timeout(connect=10.0, read=60.0),
        )

    def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> Any:
        """The decoded JSON answer; raises ApiError on an error status, urllib3's HTTPError when the server
        cannot be reached."""
        for attempt in range(2):
            creds, pool = self.credentials, self._pool
            headers = {"Accept": "application/json", "User-Agent": self._user_agent, **auth_headers(creds)}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = content_type
            response = pool.request(method, creds.server + path, body=data, headers=headers)
            if response.status == 401 and attempt == 0:
                self._reload(creds)
                continue
            if response.status >= 400:
                raise _error(response)
            return json.loads(response.data) if response.data else None
        raise AssertionError("unreachable")

    def _reload(self, stale: Credentials) -> None:
        with self._lock:
            if self.credentials is stale:  # another thread may have reloaded already
                self.credentials = self._load()
                self._pool = self._connect(self.credentials)


def _error(response: urllib3.BaseHTTPResponse) -> ApiError:
    try:
        status: dict[str, Any] = json.loads(response.data)
    except ValueError:
        status = {}
    return ApiError(response.status, status.get("reason") or response.reason or "", status.get("message", ""))


def custom_path(
    group: str, version_: str, namespace: str, plural: str, name: str = "", subresource: str = ""
) -> str:
    """The REST path of a namespaced custom resource (the collection when ``name`` is empty), or of one of
    its subresources (``status``)."""
    path = f"/apis/{group}/{version_}/namespaces/{namespace}/{plural}"
    if name:
        path += f"/{name}"
    return f"{path}/{subresource}" if subresource else path
