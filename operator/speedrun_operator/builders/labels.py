"""Labels that link every child object back to its SpeedrunJob."""

from __future__ import annotations

from speedrun_operator.api import GROUP

MANAGED_BY = "app.kubernetes.io/managed-by"
OPERATOR_NAME = "speedrun-operator"
JOB_LABEL = f"{GROUP}/job"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def child_labels(job_name: str) -> dict[str, str]:
    return {
        MANAGED_BY: OPERATOR_NAME,
        "app.kubernetes.io/part-of": "speedrun",
        JOB_LABEL: job_name[:63].rstrip("-."),
    }
