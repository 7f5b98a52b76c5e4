"""Operator start-up: settings, credentials and the metrics endpoint."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from speedrun_operator import kube, metrics
from speedrun_operator.config import OperatorConfig


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    config = OperatorConfig.from_env()
    memo.config = config
    kube.load_config()
    settings.posting.level = logging.INFO
    settings.persistence.finalizer = "speedrun.marin.community/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="speedrun.marin.community")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="speedrun.marin.community", key="last-handled-configuration"
    )
    settings.watching.server_timeout = 300
    settings.peering.lifetime = config.peering_lifetime_seconds
    if config.webhook_port is not None:
        # kopf serves TLS with a self-signed certificate and keeps the ValidatingWebhookConfiguration current.
        settings.admission.server = kopf.WebhookServer(
            addr="0.0.0.0", port=config.webhook_port, host=config.webhook_host
        )
        settings.admission.managed = "speedrun.marin.community"
    metrics.serve(config.metrics_port, config.metrics_address)
    logger.info("metrics on :%d; default image %s", config.metrics_port, config.default_image)
