"""Pod templates for the Ray head and workers: image, env (secrets by reference only), placement."""

from __future__ import annotations

from typing import Any

from speedrun_operator import contract, eval_sets
from speedrun_operator.api import SpeedrunJob
from speedrun_operator.builders.labels import child_labels
from speedrun_operator.config import OperatorConfig


def output_prefix(job: SpeedrunJob, config: OperatorConfig) -> str | None:
    return contract.output_prefix(job.spec.output, config.default_output)


def container_env(job: SpeedrunJob, config: OperatorConfig) -> list[dict[str, Any]]:
    """What the trainer needs to find its job and its data; secrets only as secretKeyRef."""
    spec = job.spec
    env: list[dict[str, Any]] = [
        {"name": contract.JOB_NAMESPACE_ENV, "value": job.namespace},
        {"name": contract.JOB_NAME_ENV, "value": job.name},
        {"name": contract.IMAGE_ENV, "value": image_of(job, config)},
        {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"},
        {
            "name": contract.DEFAULT_VALIDATION_ENV,
            "value": eval_sets.format_setting(config.default_validation_sets),
        },
    ]
    if code_config_map(job) is not None:
        env.append({"name": contract.CODE_DIR_ENV, "value": contract.CODE_MOUNT_PATH})
    prefix = output_prefix(job, config)
    if prefix:
        env.append({"name": contract.OUTPUT_ENV, "value": prefix})
    if spec.tracking.api_key_secret is not None:
        ref = spec.tracking.api_key_secret
        env.append(_secret_env(contract.WANDB_API_KEY_ENV, ref.name, ref.key))
    if spec.hf_token_secret is not None:
        ref = spec.hf_token_secret
        env.append(_secret_env(contract.HF_TOKEN_ENV, ref.name, ref.key))
    env.extend(var.model_dump(mode="json", exclude_none=True) for var in spec.env)
    return env


def code_config_map(job: SpeedrunJob) -> str | None:
    """The ConfigMap holding the job's model code, when it comes that way."""
    code = job.spec.model.code
    return code.config_map.name if code is not None and code.config_map is not None else None


def _mount_code(pod_spec: dict[str, Any], config_map: str) -> None:
    """The code's ConfigMap, read-only at the contract's path: the driver on the head and each worker host
    import it from there."""
    pod_spec["volumes"] = [{"name": contract.CODE_VOLUME, "configMap": {"name": config_map}}]
    pod_spec["containers"][0]["volumeMounts"] = [
        {"name": contract.CODE_VOLUME, "mountPath": contract.CODE_MOUNT_PATH, "readOnly": True}
    ]


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def image_of(job: SpeedrunJob, config: OperatorConfig) -> str:
    return job.spec.image or config.default_image


RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
"""Pod Security's ``restricted`` profile at pod level (the trainer image runs as UID 1000)."""
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""``restricted`` for each container. KubeRay copies it to the init container it adds to workers."""


def pod_template(
    job: SpeedrunJob,
    config: OperatorConfig,
    *,
    container_name: str,
    resources: dict[str, dict[str, str]],
    node_selector: dict[str, str],
    tolerations: list[dict[str, Any]],
) -> dict[str, Any]:
    spec = job.spec
    pod_spec: dict[str, Any] = {
        "containers": [
            {
                "name": container_name,
                "image": image_of(job, config),
                "env": container_env(job, config),
                "resources": resources,
                "securityContext": dict(RESTRICTED_CONTAINER),
            }
        ],
        "securityContext": dict(RESTRICTED_POD),
        "nodeSelector": {**node_selector, **spec.node_selector},
        "tolerations": tolerations + [t.model_dump(mode="json", exclude_none=True) for t in spec.tolerations],
    }
    config_map = code_config_map(job)
    if config_map is not None:
        _mount_code(pod_spec, config_map)
    service_account = spec.service_account_name or config.training_service_account
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    if spec.priority_class_name:
        pod_spec["priorityClassName"] = spec.priority_class_name
    if not pod_spec["nodeSelector"]:
        del pod_spec["nodeSelector"]
    if not pod_spec["tolerations"]:
        del pod_spec["tolerations"]
    # KubeRay keeps the template's labels on the pods: the operator watches its pods by the job label.
    return {"metadata": {"labels": child_labels(job.name)}, "spec": pod_spec}
