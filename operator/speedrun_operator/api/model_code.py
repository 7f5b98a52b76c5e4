"""A model defined by the submitter's own Python code (family ``custom``): where the code is, which module
defines its Levanter ``LmConfig`` subclass, and the fields that class is built with.

The operator never imports the code (it imports no JAX or Levanter): it only mounts it into the pods. The
trainer imports it, builds the config and reports the parameters and FLOPs the code itself computes.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, JsonValue, StringConstraints, WithJsonSchema, field_validator, model_validator

from speedrun_operator.api.base import ApiModel, DnsName, Url
from speedrun_operator.api.cel import rule, validations
from speedrun_operator.api.urls import check_url

MODULE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
CLASS_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SOURCES = ("configMap", "url", "image")

ModuleName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=MODULE_PATTERN)]
ClassName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=CLASS_PATTERN)]


class CodeConfigMap(ApiModel):
    """A ConfigMap in the job's namespace whose keys are the code's file names (``parallel_llama.py``), as
    kustomize's configMapGenerator packs the .py files beside the SpeedrunJob."""

    name: DnsName = Field(
        description="The ConfigMap's name. A kustomize-generated name gets a hash suffix: let kustomize "
        "rewrite this field too (examples/custom-model/kustomizeconfig)."
    )


CodeConfig = Annotated[
    dict[str, JsonValue],
    # Any JSON object: the structural schema keeps what it does not know (it cannot say "any value" itself).
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]


class ModelCode(ApiModel):
    """The code of a custom model: exactly one of configMap, url or image says where it is."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            rule(
                "[has(self.configMap), has(self.url), has(self.image) && self.image]"
                ".filter(x, x).size() == 1",
                "give exactly one of configMap, url or image: true",
            )
        )
    }

    config_map: CodeConfigMap | None = Field(
        default=None,
        description="The code's files in a ConfigMap, mounted into every pod of the run (the GitOps way: "
        "kustomize configMapGenerator). For speedrun run: the .py files beside the file.",
    )
    url: Url | None = Field(
        default=None,
        description="A folder any fsspec URL opens (gs://bucket/code/parallel-llama/), copied to each host "
        "before training.",
    )
    image: bool = Field(
        default=False,
        description="The module is already importable in the trainer image (spec.image, on its PYTHONPATH).",
    )
    module: ModuleName = Field(description="The module to import, e.g. parallel_llama.")
    config_class: ClassName = Field(
        description="The LmConfig subclass in that module the model is built from, e.g. ParallelLlamaConfig."
    )
    config: CodeConfig = Field(
        default_factory=dict,
        description="Keyword arguments of configClass, by its own (Python) field names, e.g. "
        "{hidden_dim: 64, num_layers: 2}. Unset fields take the class's defaults.",
    )

    @field_validator("url")
    @classmethod
    def _url_is_readable(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, writable=False)

    @model_validator(mode="after")
    def _one_source(self) -> ModelCode:
        given = [name for name, on in zip(SOURCES, self._sources(), strict=True) if on]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"give exactly one of configMap, url or image: true (found: {found})")
        return self

    def _sources(self) -> tuple[bool, bool, bool]:
        return self.config_map is not None, self.url is not None, self.image

    def describe(self) -> str:
        """'parallel_llama.ParallelLlamaConfig from ConfigMap parallel-llama': the code in a few words."""
        if self.config_map is not None:
            where = f"ConfigMap {self.config_map.name}"
        elif self.url is not None:
            where = self.url
        else:
            where = "the image"
        return f"{self.module}.{self.config_class} from {where}"
