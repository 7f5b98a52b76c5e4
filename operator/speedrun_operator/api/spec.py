"""SpeedrunJobSpec: everything a Marin speedrun config holds, plus the knobs of a Kubernetes job."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from speedrun_operator.api.base import ApiModel, DnsName, LabelValue, ShortText, Text, Url
from speedrun_operator.api.cel import regex, rule, validations
from speedrun_operator.api.dataset import DatasetSpec
from speedrun_operator.api.model import ModelSpec, shape_field
from speedrun_operator.api.refs import EnvVar, SecretKeyRef, Toleration
from speedrun_operator.api.resources import ResourcesSpec, chips_expression, known_shape_expression
from speedrun_operator.api.train import TrainSpec
from speedrun_operator.api.urls import WritableUrl, check_url

LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=316)]
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(\.{_LABEL})+(:[0-9]+)?([/?#]\S*)?$")
"""A host name with a dot (a domain), an optional port, then anything without spaces."""
_NOT_A_WEB_ADDRESS = "must be an http(s):// URL or a bare domain such as example.org/you"
WebAddress = Annotated[
    Url,
    Field(
        json_schema_extra=validations(
            rule(
                f"self.matches({regex('^https?://' + _HOST.pattern[1:])}) || "
                f"(!self.contains('://') && self.matches({regex(_HOST.pattern)}))",
                _NOT_A_WEB_ADDRESS,
            )
        )
    ),
]


class Author(ApiModel):
    """Who gets credit on the leaderboard."""

    name: ShortText = Field(description="Author's name.")
    affiliation: ShortText | None = Field(default=None, description="Organisation, if any.")
    url: WebAddress | None = Field(
        default=None,
        description="Homepage or profile: an http(s):// URL or a bare domain (WilliamHeld.com), "
        "kept as written (results files record it so and are compared with it).",
    )

    @field_validator("url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if "://" in value:
            if not value.startswith(("http://", "https://")) or not _HOST.match(value.split("://", 1)[1]):
                raise ValueError(_NOT_A_WEB_ADDRESS)
        elif not _HOST.match(value):
            raise ValueError(_NOT_A_WEB_ADDRESS)
        return value


class TrackingSpec(ApiModel):
    """Weights & Biases logging. Without an API key the run logs offline into the output folder."""

    entity: ShortText | None = Field(default=None, description="W&B entity (user or team).")
    project: ShortText = Field(default="marin-speedrun", description="W&B project. Default: marin-speedrun.")
    api_key_secret: SecretKeyRef | None = Field(default=None, description="Secret key holding WANDB_API_KEY.")
    tags: list[ShortText] = Field(default_factory=list, max_length=32, description="Extra W&B tags.")
    mode: Literal["online", "offline", "disabled"] | None = Field(
        default=None, description="Force a W&B mode. Default: online with a key, offline without."
    )


def _across_sections() -> list[dict[str, str]]:
    """The cross-field checks of validation.cross_field_errors that CEL can say."""
    chips, shape_known = chips_expression("self.resources"), known_shape_expression("self.resources")
    divides = "must be divisible by the number of chips"
    seq_known, seq_len = shape_field("self.model", "seq_len")
    return [
        rule(
            f"!{shape_known} || !has(self.train.batchSize) || {chips} < 1 || "
            f"self.train.batchSize % {chips} == 0",
            divides,
            field=".train.batchSize",
        ),
        rule(
            f"!{shape_known} || !has(self.train.batchSchedule) || {chips} < 1 || "
            f"self.train.batchSchedule.all(e, e.batchSize % {chips} == 0)",
            f"every batchSize {divides}",
            field=".train.batchSchedule",
        ),
        rule(
            "!has(self.model.family) || self.model.family != 'custom' || has(self.train.seqLen)",
            "a model of family custom needs train.seqLen (the tokens per sequence; its config's too)",
            field=".train.seqLen",
        ),
        rule(
            f"!has(self.train.seqLen) || !{seq_known} || self.train.seqLen <= {seq_len}",
            "must not exceed the model's seqLen; raise model.seqLen or lower train.seqLen",
            field=".train.seqLen",
        ),
    ]


class SpeedrunJobSpec(ApiModel):
    """A Marin speedrun: who, what model, how to train it, on what hardware, and where results go."""

    model_config = ApiModel.model_config | {"json_schema_extra": validations(*_across_sections())}

    author: Author = Field(description="Who ran it.")
    description: Annotated[str, StringConstraints(min_length=1, max_length=1024)] = Field(
        description="About one sentence: what this run tries."
    )
    model: ModelSpec = Field(description="The Llama model to train.")
    train: TrainSpec = Field(description="Optimiser, schedule and evaluation cadence.")
    resources: ResourcesSpec = Field(description="The hardware: GPUs, TPU slices, or the CPU for local runs.")
    dataset: DatasetSpec = Field(default_factory=DatasetSpec, description="Training and validation data.")
    tracking: TrackingSpec = Field(default_factory=TrackingSpec, description="Weights & Biases settings.")
    output: WritableUrl | None = Field(
        default=None,
        description="Where results and checkpoints go: gs://, s3://, file:// or a path. Results land in "
        "<output>/<job>/speedrun_results.json. Default: the operator's configured prefix, or "
        "./speedrun-output locally.",
    )
    image: Annotated[str, StringConstraints(max_length=512)] | None = Field(
        default=None, description="Trainer image. Default: the operator's configured image."
    )
    suspend: bool = Field(
        default=False, description="Suspend the run (tears its Ray cluster down) or resume it."
    )
    active_deadline_seconds: int | None = Field(
        default=None, ge=1, description="Fail the run when it takes longer than this, in seconds."
    )
    provisioning_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Fail the run (reason ProvisioningDeadlineExceeded, saying what kept it) when it is not "
        "Running this many seconds after its RayJob was created: no capacity, never admitted, an image that "
        "cannot be pulled. Its Ray cluster is torn down.",
    )
    backoff_limit: int = Field(
        default=2,
        ge=0,
        le=100,
        description="Retries on a new Ray cluster after a failure (resuming). Default: 2.",
    )
    ttl_seconds_after_finished: int = Field(
        default=600, ge=0, description="Keep the finished Ray job this long for its logs. Default: 600."
    )
    queue_name: LabelValue | None = Field(
        default=None, description="Kueue LocalQueue to admit the run through."
    )
    priority_class_name: DnsName | None = Field(default=None, description="PriorityClass of the run's pods.")
    service_account_name: DnsName | None = Field(
        default=None,
        description="ServiceAccount of the run's pods (Workload Identity). Default: the chart's.",
    )
    node_selector: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, max_length=32, description="Extra node labels the run's pods require."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Extra tolerations for the run's pods."
    )
    env: list[EnvVar] = Field(default_factory=list, max_length=64, description="Extra environment variables.")
    hf_token_secret: SecretKeyRef | None = Field(
        default=None, description="Secret key holding a Hugging Face token (HF_TOKEN), for gated data."
    )
    notes: Text | None = Field(default=None, description="Free-form notes kept with the results.")

    @field_validator("output")
    @classmethod
    def _writable_output(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, writable=True)
