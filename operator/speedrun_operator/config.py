"""Operator settings: what the chart (or a developer) configures through the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from speedrun_operator import eval_sets


@dataclass(frozen=True)
class OperatorConfig:
    """Defaults applied to every SpeedrunJob that does not set its own."""

    # What `make images` builds here by default; a cluster pulls from a registry: set SPEEDRUN_DEFAULT_IMAGE.
    default_image: str = "localhost/speedrun-trainer:0.1.0-cpu"
    default_output: str | None = None
    training_service_account: str | None = None
    ray_version: str = "2.49.2"
    submission_mode: str = "SidecarMode"
    """KubeRay's submitter runs beside the Ray head, so KubeRay fails (and retries) a run whose head pod is
    lost; in HTTPMode KubeRay 1.5 neither re-creates the head of a RayJob's cluster nor fails the job."""
    head_cpu: str = "2"
    head_memory: str = "8Gi"
    cpu_worker_request: str | None = None
    """What a CPU worker pod requests of the CPU when not its whole limit (the tests' real node has 2 cores
    for the submitter and two 1-core hosts); GPU and TPU hosts always request their whole limit."""
    metrics_port: int = 8080
    listen_address: str = "0.0.0.0"
    """Where the metrics endpoint and the admission webhook listen."""
    peering_lifetime_seconds: int = 60
    worker_threads: int = 16
    """Handler threads (kopf runs our sync handlers in a pool); the API client's connection pool matches."""
    webhook_port: int | None = None
    webhook_host: str | None = None
    webhook_cert_dir: Path | None = None
    default_validation_sets: dict[str, list[str]] = field(
        default_factory=lambda: dict(eval_sets.DEFAULT_VALIDATION_SETS)
    )
    """Evaluated by jobs that name no validation sets; passed to the trainer in the same variable."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> OperatorConfig:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            default_image=env.get("SPEEDRUN_DEFAULT_IMAGE", defaults.default_image),
            default_output=env.get("SPEEDRUN_DEFAULT_OUTPUT") or None,
            training_service_account=env.get("SPEEDRUN_TRAINING_SERVICE_ACCOUNT") or None,
            ray_version=env.get("SPEEDRUN_RAY_VERSION", defaults.ray_version),
            submission_mode=env.get("SPEEDRUN_SUBMISSION_MODE", defaults.submission_mode),
            head_cpu=env.get("SPEEDRUN_HEAD_CPU", defaults.head_cpu),
            head_memory=env.get("SPEEDRUN_HEAD_MEMORY", defaults.head_memory),
            cpu_worker_request=env.get("SPEEDRUN_CPU_WORKER_REQUEST") or None,
            metrics_port=int(env.get("SPEEDRUN_METRICS_PORT", defaults.metrics_port)),
            listen_address=env.get("SPEEDRUN_LISTEN_ADDRESS", defaults.listen_address),
            worker_threads=int(env.get("SPEEDRUN_WORKER_THREADS", defaults.worker_threads)),
            peering_lifetime_seconds=int(
                env.get("SPEEDRUN_PEERING_LIFETIME_SECONDS", defaults.peering_lifetime_seconds)
            ),
            webhook_port=int(env["SPEEDRUN_WEBHOOK_PORT"]) if env.get("SPEEDRUN_WEBHOOK_PORT") else None,
            webhook_host=env.get("SPEEDRUN_WEBHOOK_HOST") or None,
            webhook_cert_dir=Path(env["SPEEDRUN_WEBHOOK_CERT_DIR"])
            if env.get("SPEEDRUN_WEBHOOK_CERT_DIR")
            else None,
            default_validation_sets=eval_sets.from_env(env),
        )
