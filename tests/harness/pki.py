"""Certificates and kubeconfigs for a loopback cluster, made with the openssl CLI.

One CA signs the API server's serving certificate and a client certificate per component. Keys are EC P-256
(fast to make); the service-account signing key is RSA 2048, the algorithm every client understands.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CA_SUBJECT = "/CN=speedrun-harness-ca"


class PkiError(RuntimeError):
    pass


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise PkiError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ClusterPki:
    """Every file a cluster needs; see :func:`make_pki`."""

    directory: Path
    ca: KeyPair
    apiserver: KeyPair
    service_account_key: Path  # private: the controller-manager and the API server's signing key
    service_account_pub: Path  # public: the API server's --service-account-key-file
    clients: dict[str, KeyPair]  # by component name (admin, kube-controller-manager, ...)


def _ec_key_args() -> list[str]:
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _make_ca(directory: Path, days: int) -> KeyPair:
    pair = KeyPair(directory / "ca.crt", directory / "ca.key")
    _openssl(
        "req",
        "-x509",
        "-new",
        *_ec_key_args(),
        "-keyout",
        pair.key.name,
        "-out",
        pair.cert.name,
        "-days",
        str(days),
        "-subj",
        CA_SUBJECT,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        cwd=directory,
    )
    return pair


def _sign(directory: Path, ca: KeyPair, name: str, subject: str, extensions: str, days: int) -> KeyPair:
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    csr = directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    ext.write_text(extensions)
    _openssl(
        "req",
        "-new",
        *_ec_key_args(),
        "-keyout",
        pair.key.name,
        "-out",
        csr.name,
        "-subj",
        subject,
        cwd=directory,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        csr.name,
        "-CA",
        ca.cert.name,
        "-CAkey",
        ca.key.name,
        "-CAcreateserial",
        "-out",
        pair.cert.name,
        "-days",
        str(days),
        "-extfile",
        ext.name,
        cwd=directory,
    )
    csr.unlink()
    ext.unlink()
    return pair


# Every component talks to the API server as a member of system:masters: the harness tests the operator, not
# the control plane's own RBAC. Distinct common names keep the audit trail and logs readable.
CLIENTS: dict[str, str] = {
    "admin": "/O=system:masters/CN=speedrun-admin",
    "kube-controller-manager": "/O=system:masters/CN=system:kube-controller-manager",
    "kube-scheduler": "/O=system:masters/CN=system:kube-scheduler",
    "kwok": "/O=system:masters/CN=kwok",
    "ray-operator": "/O=system:masters/CN=kuberay-operator",
}


CLIENT_EXT = (
    "basicConstraints=CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=clientAuth\n"
)


def sign_client(directory: Path, name: str, subject: str, days: int = 30) -> KeyPair:
    """One more client certificate from the CA that :func:`make_pki` made in ``directory``."""
    ca = KeyPair(directory / "ca.crt", directory / "ca.key")
    return _sign(directory, ca, name, subject, CLIENT_EXT, days)


def sign_server(directory: Path, name: str, ips: Sequence[str], days: int = 30) -> KeyPair:
    """A serving certificate for ``ips`` from the CA that :func:`make_pki` made in ``directory`` (a webhook
    the API server calls by URL)."""
    ca = KeyPair(directory / "ca.crt", directory / "ca.key")
    extensions = (
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(f'IP:{ip}' for ip in ips)}\n"
    )
    pair = _sign(directory, ca, name, f"/CN={name}", extensions, days)
    pair.key.chmod(0o600)
    return pair


def apiserver_sans(first_service_ip: str, extra_ips: Sequence[str] = ()) -> list[str]:
    dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    dns.append("kubernetes.default.svc.cluster.local")
    ips = ["127.0.0.1", first_service_ip, *extra_ips]
    return [*(f"DNS:{d}" for d in dns), *(f"IP:{ip}" for ip in ips)]


def make_pki(
    directory: Path, *, first_service_ip: str = "10.0.0.1", days: int = 30, extra_ips: Sequence[str] = ()
) -> ClusterPki:
    """Create the CA, the serving and client certificates and the service-account keys in ``directory``.

    ``extra_ips``: more addresses the API server serves on (the real node's bridge gateway).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = _make_ca(directory, days)
    server_ext = (
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(apiserver_sans(first_service_ip, extra_ips))}\n"
    )
    apiserver = _sign(directory, ca, "apiserver", "/CN=kube-apiserver", server_ext, days)
    clients = {
        name: _sign(directory, ca, name, subject, CLIENT_EXT, days) for name, subject in CLIENTS.items()
    }
    sa_key = directory / "service-account.key"
    sa_pub = directory / "service-account.pub"
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", sa_key.name, cwd=directory
    )
    _openssl("pkey", "-in", sa_key.name, "-pubout", "-out", sa_pub.name, cwd=directory)
    for path in directory.iterdir():
        if path.suffix == ".key":
            path.chmod(0o600)
    return ClusterPki(directory, ca, apiserver, sa_key, sa_pub, clients)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, *, server: str, ca: Path, client: KeyPair, user: str, context: str) -> Path:
    """A self-contained kubeconfig (certificates inline), written as JSON, which is valid YAML."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": context, "cluster": {"server": server, "certificate-authority-data": _b64(ca)}}
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": _b64(client.cert), "client-key-data": _b64(client.key)},
            }
        ],
        "contexts": [
            {"name": context, "context": {"cluster": context, "user": user, "namespace": "default"}}
        ],
        "current-context": context,
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path
