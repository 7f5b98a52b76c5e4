"""The SpeedrunLadder API: one scaling-track submission (a ladder of model sizes trained the same way) as one
object. The operator runs one SpeedrunJob per rung; the ladder's status carries each rung's outcome and the
power-law fit the leaderboard's scaling board computes over them.

A rung holds only what differs per size: a partial SpeedrunJob spec (every field optional, no cross-field
rules) merged over ``spec.base`` by ``ladder.merge``; the merged spec is then validated as any SpeedrunJob's.
"""

from __future__ import annotations

import copy
import re
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, Field, StringConstraints, create_model, field_validator, model_validator

from speedrun_operator.api.base import ApiModel, MutableApiModel, ShortText, Text, Url
from speedrun_operator.api.job import ObjectMeta
from speedrun_operator.api.spec import Author, SpeedrunJobSpec
from speedrun_operator.api.status import Condition

LADDER_KIND = "SpeedrunLadder"
LADDER_PLURAL = "speedrunladders"
LADDER_SINGULAR = "speedrunladder"
LADDER_SHORT_NAMES = ("srl",)

RUNG_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
RungName = Annotated[str, StringConstraints(min_length=1, max_length=40)]
"""A rung's name ends its SpeedrunJob's name, which is its results folder: a folder name that is also part of
a Kubernetes name (lowercase letters, digits and '-')."""

LADDER_ONLY_FIELDS = ("author", "description", "suspend")
"""SpeedrunJob fields the ladder sets for every rung itself (author, description, suspend)."""
MAX_RUNGS = 16
MIN_RUNGS = 3
"""Three sizes at least: the power law has three parameters."""


def _partial(model: type[BaseModel], cache: dict[type[BaseModel], type[ApiModel]]) -> type[ApiModel]:
    """``model`` with every field optional and no validators or CEL rules: the per-rung overrides of it.
    Nested models become partial too (they merge key by key); lists and tagged unions stay whole."""
    if model in cache:
        return cache[model]
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if model is SpeedrunJobSpec and name in LADDER_ONLY_FIELDS:
            continue
        partial_info = copy.copy(info)
        partial_info.default, partial_info.default_factory = None, None
        fields[name] = (_partial_annotation(info.annotation, cache) | None, partial_info)
    doc = (model.__doc__ or "").strip().splitlines()[0]
    partial = create_model(
        f"Partial{model.__name__}",
        __base__=ApiModel,
        __doc__=f"{doc} Any field may be left out: it comes from spec.base.",
        **fields,
    )
    cache[model] = partial
    return partial


def _partial_annotation(annotation: Any, cache: dict[type[BaseModel], type[ApiModel]]) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _partial(annotation, cache)
    args = get_args(annotation)
    models = [arg for arg in args if isinstance(arg, type) and issubclass(arg, BaseModel)]
    if get_origin(annotation) is not Annotated and len(models) == 1 and type(None) in args and len(args) == 2:
        return _partial(models[0], cache)
    return annotation


PartialSpec: type[ApiModel] = _partial(SpeedrunJobSpec, {})
"""A SpeedrunJob spec without author, description and suspend, every field optional."""


class LadderRung(PartialSpec):  # type: ignore[misc,valid-type]
    """One size of the ladder: its name and the SpeedrunJob fields that differ from spec.base."""

    name: RungName = Field(
        description="The rung's name, e.g. 130m: its results folder is <output>/<ladder>/<ladder>-<name>.",
        json_schema_extra={"pattern": RUNG_NAME_PATTERN},
    )
    description: Text | None = Field(
        default=None, description="This rung's description in its results. Default: the ladder's."
    )

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        if not re.match(RUNG_NAME_PATTERN, value):
            raise ValueError(
                "must be a folder name that can end a Kubernetes name: lowercase letters, digits and '-', "
                "starting and ending with a letter or digit (e.g. 130m, 1-2b)"
            )
        return value


CUSTOM_CODE_REFUSED = (
    "a ladder's rungs cannot run custom model code yet (their counts, which a ladder plans and fits by, come "
    "from the code where it runs): submit each size as a SpeedrunJob"
)


class SpeedrunLadderSpec(ApiModel):
    """A scaling ladder: who, what it tries, the spec its rungs share, the rungs, how many run at once."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.rungs.all(r, self.rungs.exists_one(s, s.name == r.name))",
                    "message": "rungs: each rung needs a name of its own",
                },
                {
                    "rule": "self.rungs.all(r, !has(r.model) || !has(r.model.family) || "
                    "r.model.family != 'custom') && (!has(self.base) || !has(self.base.model) || "
                    "!has(self.base.model.family) || self.base.model.family != 'custom')",
                    "message": CUSTOM_CODE_REFUSED,
                },
            ]
        }
    }

    author: Author = Field(description="Who ran it: every rung's author.")
    description: Annotated[str, StringConstraints(min_length=1, max_length=1024)] = Field(
        description="About one sentence: what this ladder tries."
    )
    base: PartialSpec = Field(  # type: ignore[valid-type]
        default_factory=PartialSpec,
        description="The SpeedrunJob spec every rung shares (all but author, description and suspend). "
        "A rung's fields are merged over it: model, train and resources key by key, the rest whole. "
        "output is the ladder's prefix: rung results land in <output>/<ladder>/<ladder>-<rung>/.",
    )
    rungs: list[LadderRung] = Field(
        min_length=MIN_RUNGS,
        max_length=MAX_RUNGS,
        description="The sizes, smallest first (the order they start in); three at least, for a fit.",
    )
    parallelism: int = Field(
        default=1, ge=1, le=MAX_RUNGS, description="How many rungs may run at once. Default: 1."
    )
    suspend: bool = Field(
        default=False, description="Suspend every rung (and start no new one), or resume them."
    )

    @model_validator(mode="after")
    def _no_custom_code(self) -> SpeedrunLadderSpec:
        parts = [("base", self.base), *((f"rungs[{rung.name}]", rung) for rung in self.rungs)]
        for where, part in parts:
            if getattr(getattr(part, "model", None), "family", None) == "custom":
                raise ValueError(f"{where}.model.family: {CUSTOM_CODE_REFUSED}")
        return self

    @model_validator(mode="after")
    def _distinct_names(self) -> SpeedrunLadderSpec:
        names = [rung.name for rung in self.rungs]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"rung names must differ; {', '.join(twice)} appears more than once")
        return self


class SpeedrunLadder(ApiModel):
    """A Marin scaling-track submission as a Kubernetes object."""

    api_version: Literal["speedrun.marin.community/v1alpha1"] = Field(
        default="speedrun.marin.community/v1alpha1", alias="apiVersion"
    )
    kind: Literal["SpeedrunLadder"] = "SpeedrunLadder"
    metadata: ObjectMeta
    spec: SpeedrunLadderSpec
    status: SpeedrunLadderStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"


class LadderPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


WAITING = "Waiting"
"""A rung's phase before its SpeedrunJob exists."""


class RungStatus(ApiModel):
    """One rung as its SpeedrunJob reports it."""

    name: ShortText = Field(description="The rung's name.")
    job: ShortText = Field(description="Its SpeedrunJob.")
    phase: ShortText = Field(description="Waiting (not created yet), else its SpeedrunJob's phase.")
    reason: ShortText | None = Field(default=None, description="Its SpeedrunJob's reason.")
    parameters: int | None = Field(default=None, description="Trainable parameters.")
    model_flops: float | None = Field(default=None, description="Model FLOPs (planned, then as recorded).")
    hardware_flops: float | None = Field(
        default=None, description="Training hardware FLOPs (time x chips x peak), once finished."
    )
    eval_bpb: float | None = Field(default=None, description="Eval bits per byte, once published.")
    eval_set: ShortText | None = Field(default=None, description="Which validation set evalBpb is on.")
    results_url: Url | None = Field(default=None, description="Its speedrun_results.json.")


class PowerLawStatus(ApiModel):
    """bpb = a * x^(-b) + c over the rungs' (model FLOPs, bpb), and its projection."""

    a: float = Field(description="Scale a.")
    b: float = Field(description="Exponent b (the site shows -b as the slope).")
    c: float = Field(description="Asymptote c.")
    r2: float = Field(description="R² over the fitted rungs.")
    projected_bpb: float = Field(description="a * 1e22^(-b) + c: the bpb projected at 1e22 FLOPs.")


class FitStatus(ApiModel):
    """The scaling board's fit of the finished rungs, as `speedrun leaderboard` computes it."""

    axis: Literal["model_flops"] = Field(default="model_flops", description="The FLOPs fitted against.")
    points: int = Field(description="Rungs fitted.")
    eval_set: ShortText | None = Field(default=None, description="The validation set of the fitted bpb.")
    site: PowerLawStatus | None = Field(
        default=None, description="The site's fit (its solver, stopped after 200 iterations): what it ranks."
    )
    converged: PowerLawStatus | None = Field(
        default=None, description="Our converged least-squares fit of the same rungs."
    )
    listed: bool = Field(
        description="Some rung used over 3e20 hardware FLOPs: the scaling board lists the group."
    )


class SpeedrunLadderStatus(MutableApiModel):
    """Observed state, written by the operator. Never edit by hand."""

    phase: LadderPhase = Field(
        default=LadderPhase.PENDING, description="Pending, Running, Suspended, Succeeded or Failed."
    )
    reason: ShortText | None = Field(default=None, description="Why the ladder is in this phase (CamelCase).")
    message: Text | None = Field(default=None, description="Human-readable detail for the phase.")
    observed_generation: int | None = Field(default=None, description="The spec generation last acted on.")
    conditions: list[Condition] = Field(default_factory=list, max_length=16, description="Conditions.")
    rungs: list[RungStatus] = Field(default_factory=list, max_length=MAX_RUNGS, description="Each rung.")
    rungs_done: ShortText | None = Field(default=None, description="Rungs with results / rungs, e.g. 2/4.")
    total_model_flops: float | None = Field(default=None, description="Model FLOPs of every rung together.")
    total_hardware_flops: float | None = Field(
        default=None, description="Hardware FLOPs the finished rungs used."
    )
    fit: FitStatus | None = Field(default=None, description="The power law, from three finished rungs on.")
    projected_bpb: ShortText | None = Field(
        default=None, description="The site fit's bpb at 1e22 FLOPs to 4 decimals, for kubectl get."
    )
    start_time: ShortText | None = Field(default=None, description="When the first rung was created.")
    completion_time: ShortText | None = Field(default=None, description="When it succeeded or failed.")

    @property
    def settled(self) -> bool:
        """Nothing is left to do: every rung finished, or the ladder failed and no rung still runs."""
        if self.phase == LadderPhase.SUCCEEDED:
            return True
        return self.phase == LadderPhase.FAILED and not any(
            rung.phase not in {WAITING, "Succeeded", "Failed"} for rung in self.rungs
        )


SpeedrunLadder.model_rebuild()
