"""References to Kubernetes objects and the few core/v1 shapes a SpeedrunJob passes through to its pods."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from speedrun_operator.api.base import ApiModel, DnsName, Text
from speedrun_operator.api.cel import rule, validations

SecretKey = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]
EnvName = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
]


class SecretKeyRef(ApiModel):
    """One key of a Secret in the SpeedrunJob's namespace. Only the reference is stored; never the value."""

    name: DnsName = Field(description="Name of the Secret, in the SpeedrunJob's namespace.")
    key: SecretKey = Field(description="Key inside the Secret whose value is used.")


class EnvVarSource(ApiModel):
    """Where a variable's value comes from: one Secret or ConfigMap key."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            rule(
                "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                "set exactly one of secretKeyRef or configMapKeyRef",
            )
        )
    }

    secret_key_ref: SecretKeyRef | None = Field(default=None, description="Take the value from a Secret key.")
    config_map_key_ref: SecretKeyRef | None = Field(
        default=None, description="Take the value from a ConfigMap key (same name/key shape as a Secret ref)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvVarSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("set exactly one of secretKeyRef or configMapKeyRef")
        return self


class EnvVar(ApiModel):
    """An environment variable for the training containers (a subset of core/v1 EnvVar)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            rule("!(has(self.value) && has(self.valueFrom))", "set value or valueFrom, not both")
        )
    }

    name: EnvName = Field(description="Variable name.")
    value: Text | None = Field(
        default=None, description="Literal value. Do not put secrets here: use valueFrom."
    )
    value_from: EnvVarSource | None = Field(
        default=None, description="Take the value from a Secret or ConfigMap."
    )

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError("set value or valueFrom, not both")
        return self


class Toleration(ApiModel):
    """A pod toleration (core/v1 Toleration), added to every pod of the run."""

    key: Annotated[str, StringConstraints(max_length=316)] | None = Field(
        default=None, description="Taint key."
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (default)."
    )
    value: Annotated[str, StringConstraints(max_length=63)] | None = Field(
        default=None, description="Taint value."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate; empty means all."
    )
    toleration_seconds: int | None = Field(default=None, description="For NoExecute: how long to stay bound.")
