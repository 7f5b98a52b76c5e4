"""The hardware a run trains on: GPUs of one type, TPU slices, or the CPU."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, JsonValue, StringConstraints, field_validator, model_validator

from speedrun_operator import accelerators, contract
from speedrun_operator.api.base import ApiModel
from speedrun_operator.api.cel import literal, or_default, rule, validations

_GPU_TYPES = sorted(accelerators.tables().gpus)
_TPU_TYPES = sorted(accelerators.tables().tpu_slices)
_NO_CPU_ENTRY = "(the table has no CPU entry), e.g. peakFlopsPerChip: 1.0e11"


class GpuResources(ApiModel):
    """NVIDIA GPUs on one node."""

    type: Annotated[str, StringConstraints(max_length=32)] = Field(
        description="GPU model: " + ", ".join(_GPU_TYPES) + ".",
        json_schema_extra={"enum": list[JsonValue](_GPU_TYPES)},
    )
    count: int = Field(default=1, ge=1, le=16, description="GPUs for the run (one node). Default: 1.")

    @field_validator("type")
    @classmethod
    def _known_gpu(cls, value: str) -> str:
        if value not in accelerators.tables().gpus:
            raise ValueError(f"unknown GPU type {value!r}; known types: {', '.join(_GPU_TYPES)}")
        return value


class TpuResources(ApiModel):
    """Cloud TPU slices, as GKE provisions them (one or more hosts per slice)."""

    type: Annotated[
        str, StringConstraints(max_length=32, pattern=r"^(v4|v5p|v5litepod|v6e)-[1-9][0-9]*$")
    ] = Field(
        description="TPU slice type such as v4-8, v5litepod-8, v6e-8 or v4-16 (multi-host).",
        json_schema_extra={"enum": list[JsonValue](_TPU_TYPES)},
    )
    slices: int = Field(default=1, ge=1, le=64, description="Number of slices (multislice). Default: 1.")

    @field_validator("type")
    @classmethod
    def _known_slice(cls, value: str) -> str:
        if value not in accelerators.tables().tpu_slices:
            generation = value.split("-")[0]
            same = [name for name in _TPU_TYPES if name.startswith(generation + "-")]
            raise ValueError(
                f"unknown TPU slice shape {value!r}; known {generation} shapes: {', '.join(same) or 'none'}"
            )
        return value


class CpuResources(ApiModel):
    """The host CPU: for ``speedrun run`` on one machine, and smoke tests on a CPU node pool."""

    cores: int | None = Field(
        default=None, ge=1, le=1024, description="CPU cores for the run (each host's). Default: all."
    )
    hosts: int = Field(
        default=1,
        ge=1,
        le=16,
        description="CPU hosts, one JAX process each, joined as a multi-host TPU slice's are: for local and "
        "test use, to exercise the multi-host path of a TPU slice on CPUs (one worker pod per host; speedrun "
        "run starts them all on this machine). Default: 1.",
    )


class ResourcesSpec(ApiModel):
    """Exactly one of gpu, tpu or cpu."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": validations(
            rule(
                "(has(self.gpu) ? 1 : 0) + (has(self.tpu) ? 1 : 0) + (has(self.cpu) ? 1 : 0) == 1",
                "resources: set exactly one of gpu, tpu or cpu",
            ),
            rule(
                "!has(self.cpu) || has(self.peakFlopsPerChip)",
                f"a CPU run needs peakFlopsPerChip {_NO_CPU_ENTRY}",
                field=".peakFlopsPerChip",
            ),
        )
    }

    gpu: GpuResources | None = Field(default=None, description="Train on GPUs.")
    tpu: TpuResources | None = Field(default=None, description="Train on TPU slices.")
    cpu: CpuResources | None = Field(
        default=None, description="Train on the CPU (local runs and CPU-pool smoke tests)."
    )
    peak_flops_per_chip: float | None = Field(
        default=None,
        gt=0,
        description="Peak bf16 FLOP/s of one chip, for hardware the table does not know (and the CPU).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ResourcesSpec:
        chosen = [name for name in ("gpu", "tpu", "cpu") if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "set exactly one of gpu, tpu or cpu"
                + (f" (got {' and '.join(chosen)})" if chosen else " (got none)")
                + "; e.g. gpu: {type: A100, count: 1} or tpu: {type: v4-8}"
            )
        if self.cpu is not None and self.peak_flops_per_chip is None:
            raise ValueError(f"a CPU run needs peakFlopsPerChip {_NO_CPU_ENTRY}")
        return self

    @property
    def num_chips(self) -> int:
        """Accelerator chips in the run: GPUs, TPU chips over all slices, or 1 per CPU host."""
        return contract.placement(self).chips

    @property
    def device_type(self) -> str:
        if self.gpu is not None:
            return self.gpu.type
        if self.tpu is not None:
            return self.tpu.type
        return "cpu"

    @property
    def peak_flops_per_device(self) -> float:
        if self.peak_flops_per_chip is not None:
            return self.peak_flops_per_chip
        if self.gpu is not None:
            return accelerators.gpu_type(self.gpu.type).peak_flops
        if self.tpu is not None:
            return accelerators.tpu_slice(self.tpu.type).peak_flops
        raise ValueError("a CPU run needs resources.peakFlopsPerChip")

    def describe(self) -> str:
        """Short form for ``kubectl get``: ``1xA100``, ``v4-8``, ``2xv4-16``, ``cpu``."""
        if self.gpu is not None:
            return f"{self.gpu.count}x{self.gpu.type}"
        if self.tpu is not None:
            return self.tpu.type if self.tpu.slices == 1 else f"{self.tpu.slices}x{self.tpu.type}"
        hosts = self.cpu.hosts if self.cpu is not None else 1
        return "cpu" if hosts == 1 else f"{hosts}xcpu"


def chips_expression(resources: str) -> str:
    """``ResourcesSpec.num_chips`` in CEL, of the resources at ``resources`` (e.g. ``self.resources``); valid
    where the TPU type is a known shape."""
    tpu_chips = {name: shape.chips for name, shape in accelerators.tables().tpu_slices.items()}
    gpu, tpu, cpu = (f"{resources}.{kind}" for kind in ("gpu", "tpu", "cpu"))
    return (
        f"(has({gpu}) ? {or_default(gpu + '.count', 1)} : has({tpu}) ? "
        f"{literal(tpu_chips)}[{tpu}.type] * {or_default(tpu + '.slices', 1)} : "
        f"has({cpu}) ? {or_default(cpu + '.hosts', 1)} : 1)"
    )


def known_shape_expression(resources: str) -> str:
    return f"(!has({resources}.tpu) || {resources}.tpu.type in {literal(_TPU_TYPES)})"
