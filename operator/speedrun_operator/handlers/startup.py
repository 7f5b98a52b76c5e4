"""Operator start-up: settings, credentials and the metrics endpoint."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import kopf

from speedrun_operator import kube_client, metrics
from speedrun_operator.config import OperatorConfig
from speedrun_operator.handlers.events import post
from speedrun_operator.kube import KubeCluster
from speedrun_operator.reconcile import Context
from speedrun_operator.reconcile_ladder import LadderContext


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    config: OperatorConfig = memo.get("config") or OperatorConfig.from_env()
    cluster = KubeCluster(post, connections=config.worker_threads)
    memo.context = Context(cluster=cluster, config=config)
    memo.ladders = LadderContext(cluster=cluster, config=config)
    settings.posting.level = logging.INFO
    settings.persistence.finalizer = "speedrun.marin.community/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="speedrun.marin.community")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="speedrun.marin.community", key="last-handled-configuration"
    )
    settings.watching.server_timeout = 300
    # Handlers are sync (our API client blocks); kopf's default pool is cores + 4 threads.
    settings.execution.max_workers = config.worker_threads
    settings.peering.lifetime = config.peering_lifetime_seconds
    if config.webhook_port is not None:
        _serve_admission(settings, config)
    metrics.serve(config.metrics_port, config.listen_address)
    logger.info("metrics on :%d; default image %s", config.metrics_port, config.default_image)


@kopf.on.login()
async def login(memo: kopf.Memo, **_: Any) -> kopf.AiohttpSession:
    """kopf watches and writes with the credentials our own client uses, through a session with a bounded
    connection pool: kopf's own is unbounded, and at a burst of 500 new jobs it opened hundreds of TLS
    connections at once, each with a 256 KiB read buffer, most of the operator's peak memory. kopf closes
    the session when it logs in again (a 401)."""
    creds = await asyncio.to_thread(kube_client.load_credentials)
    config: OperatorConfig = memo.get("config") or OperatorConfig.from_env()
    connections = kopf_connections(memo.get("namespaces", 0), config.worker_threads)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, ssl=kube_client.ssl_context(creds)),
        headers=kube_client.auth_headers(creds),
    )
    return kopf.AiohttpSession(
        server=creds.server, aiohttp_session=session, default_namespace=creds.namespace
    )


WATCHES_PER_NAMESPACE = 16
"""More than the watch streams kopf keeps open per watched namespace (one per resource the handlers follow,
and its own), each of which holds a connection for as long as it runs."""


def kopf_connections(namespaces: int, worker_threads: int) -> int:
    """Room for every watch stream, and for kopf's requests after the handlers' passes: each pass leads to
    about two (its progress patch, the events it posts)."""
    return WATCHES_PER_NAMESPACE * max(1, namespaces) + 2 * worker_threads


def _serve_admission(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """Serve the webhook; whoever made its certificate registers it.

    A mounted certificate (the chart's, from cert-manager or Helm) comes with the chart's own webhook
    configuration. Without one, the operator signs its own and kopf registers the webhook with that CA.
    """
    host = config.webhook_host or "localhost"
    if config.webhook_cert_dir is not None:
        cert, key = config.webhook_cert_dir / "tls.crt", config.webhook_cert_dir / "tls.key"
    else:
        # cryptography is 9 MiB of the operator's memory: only an operator that signs its own loads it.
        from speedrun_operator.webhook_tls import write_self_signed

        cert, key = write_self_signed(host, Path(tempfile.mkdtemp(prefix="speedrun-webhook-")))
        # kopf keeps the ValidatingWebhookConfiguration of this name pointing at the server, with its CA.
        settings.admission.managed = "speedrun.marin.community"
    # kopf restarts the server when the certificate's files change (cert-manager renewing a mounted Secret).
    settings.admission.server = kopf.WebhookServer(
        addr=config.listen_address, port=config.webhook_port, host=host, certfile=cert, pkeyfile=key
    )
