"""Operator start-up: settings, credentials and the metrics endpoint."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import kopf

from speedrun_operator import kube_client, metrics
from speedrun_operator.config import OperatorConfig
from speedrun_operator.handlers.events import post
from speedrun_operator.kube import KubeCluster
from speedrun_operator.reconcile import Context
from speedrun_operator.reconcile_ladder import LadderContext
from speedrun_operator.webhook_tls import write_self_signed


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    config: OperatorConfig = memo.get("config") or OperatorConfig.from_env()
    kube_client.load_config()
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
    # Handlers are sync (the Kubernetes client blocks); kopf's default pool is cores + 4 threads.
    settings.execution.max_workers = config.worker_threads
    settings.peering.lifetime = config.peering_lifetime_seconds
    if config.webhook_port is not None:
        _serve_admission(settings, config)
    metrics.serve(config.metrics_port, config.listen_address)
    logger.info("metrics on :%d; default image %s", config.metrics_port, config.default_image)


def _serve_admission(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """Serve the webhook; whoever made its certificate registers it.

    A mounted certificate (the chart's, from cert-manager or Helm) comes with the chart's own webhook
    configuration. Without one, the operator signs its own and kopf registers the webhook with that CA.
    """
    host = config.webhook_host or "localhost"
    if config.webhook_cert_dir is not None:
        cert, key = config.webhook_cert_dir / "tls.crt", config.webhook_cert_dir / "tls.key"
    else:
        cert, key = write_self_signed(host, Path(tempfile.mkdtemp(prefix="speedrun-webhook-")))
        # kopf keeps the ValidatingWebhookConfiguration of this name pointing at the server, with its CA.
        settings.admission.managed = "speedrun.marin.community"
    # kopf restarts the server when the certificate's files change (cert-manager renewing a mounted Secret).
    settings.admission.server = kopf.WebhookServer(
        addr=config.listen_address, port=config.webhook_port, host=host, certfile=cert, pkeyfile=key
    )
