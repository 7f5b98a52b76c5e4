"""A ladder's rung -> the SpeedrunJob that runs it, owned by the ladder. Pure: rung in, manifest out."""

from __future__ import annotations

from typing import Any

from speedrun_operator.api import API_VERSION, GROUP
from speedrun_operator.api.ladder import LADDER_KIND
from speedrun_operator.builders.labels import MANAGED_BY, OPERATOR_NAME
from speedrun_operator.ladder.rungs import Rung

LADDER_LABEL = f"{GROUP}/ladder"
RUNG_LABEL = f"{GROUP}/rung"


def build_rung_job(rung: Rung, ladder_name: str, ladder_uid: str) -> dict[str, Any]:
    manifest = rung.job.manifest()
    manifest["metadata"]["namespace"] = rung.job.namespace
    manifest["metadata"]["labels"] = {
        **manifest["metadata"].get("labels", {}),
        MANAGED_BY: OPERATOR_NAME,
        "app.kubernetes.io/part-of": "speedrun",
        LADDER_LABEL: ladder_name[:63].rstrip("-."),
        RUNG_LABEL: rung.name,
    }
    manifest["metadata"]["ownerReferences"] = [
        {
            "apiVersion": API_VERSION,
            "kind": LADDER_KIND,
            "name": ladder_name,
            "uid": ladder_uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return manifest
