"""kopf logs in with the credentials our own client uses, through a session whose connection pool is bounded
(kopf's own is not: at a burst it opened hundreds of TLS connections, most of the operator's memory)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import kopf
import pytest

from speedrun_operator.config import OperatorConfig
from speedrun_operator.handlers.startup import WATCHES_PER_NAMESPACE, kopf_connections, login

pytestmark = pytest.mark.unit


def test_kopf_gets_our_credentials_in_a_session_with_room_for_its_watches_and_our_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.write_text(
        json.dumps(
            {
                "current-context": "dev",
                "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "dev", "namespace": "t"}}],
                "clusters": [{"name": "dev", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "dev", "user": {"token": "s3cret"}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    memo = kopf.Memo(config=OperatorConfig(worker_threads=8), namespaces=2)

    async def logged_in() -> tuple[kopf.AiohttpSession, int, str]:
        handler: Any = login  # kopf's decorator types it as any activity handler
        found: kopf.AiohttpSession = await handler(memo=memo)
        session = found.aiohttp_session
        assert session.connector is not None
        limit, auth = session.connector.limit, session.headers["Authorization"]
        await session.close()
        return found, limit, auth

    found, limit, auth = asyncio.run(logged_in())
    assert (found.server, found.default_namespace, auth) == ("https://127.0.0.1:6443", "t", "Bearer s3cret")
    assert limit == kopf_connections(2, 8) == 2 * WATCHES_PER_NAMESPACE + 2 * 8


def test_a_cluster_wide_operator_counts_as_one_namespace_of_watches() -> None:
    assert kopf_connections(0, 16) == kopf_connections(1, 16) == WATCHES_PER_NAMESPACE + 2 * 16
