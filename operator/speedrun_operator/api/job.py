"""The SpeedrunJob object: apiVersion, kind, metadata, spec and status."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from speedrun_operator.api.base import API_VERSION, KIND, ApiModel, DnsName
from speedrun_operator.api.spec import SpeedrunJobSpec
from speedrun_operator.api.status import SpeedrunJobStatus


class ObjectMeta(ApiModel):
    """The parts of ObjectMeta the API reads; the rest passes through untouched."""

    model_config = ApiModel.model_config | {"extra": "allow"}

    name: DnsName = Field(description="The run's name: becomes the results folder and W&B run name.")
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    generation: int | None = None


class SpeedrunJob(ApiModel):
    """A Marin speedrun as a Kubernetes object."""

    api_version: Literal["speedrun.marin.community/v1alpha1"] = Field(
        default="speedrun.marin.community/v1alpha1", alias="apiVersion"
    )
    kind: Literal["SpeedrunJob"] = "SpeedrunJob"
    metadata: ObjectMeta
    spec: SpeedrunJobSpec
    status: SpeedrunJobStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    def manifest(self) -> dict[str, Any]:
        """The object as a user would write it: no status, only the metadata a user sets."""
        meta: dict[str, Any] = {"name": self.metadata.name}
        if self.metadata.namespace:
            meta["namespace"] = self.metadata.namespace
        if self.metadata.labels:
            meta["labels"] = dict(self.metadata.labels)
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": meta,
            "spec": self.spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
        }
