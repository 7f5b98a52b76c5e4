"""The accelerator tables (``data/accelerators.yaml``) as typed lookups.

Everything that needs to know hardware — validation, run info, the RayJob builder — asks here, so adding a GPU
or a TPU slice shape is one line of YAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

_TPU_TYPE = re.compile(r"^(?P<generation>v4|v5p|v5litepod|v6e)-(?P<size>[1-9][0-9]*)$")


@dataclass(frozen=True)
class GpuType:
    name: str
    gke_accelerator: str | None
    peak_flops: float


@dataclass(frozen=True)
class TpuSlice:
    """One TPU slice shape, as GKE provisions it."""

    name: str
    generation: str
    gke_accelerator: str
    topology: str
    chips: int
    hosts: int
    machine_type: str
    peak_flops: float

    @property
    def chips_per_host(self) -> int:
        return self.chips // self.hosts


@dataclass(frozen=True)
class Tables:
    gpus: dict[str, GpuType]
    tpu_slices: dict[str, TpuSlice]
    tokenizer_vocab: dict[str, int]


@cache
def tables() -> Tables:
    raw = yaml.safe_load(resources.files("speedrun_operator").joinpath("data/accelerators.yaml").read_text())
    gpus = {
        name: GpuType(
            name=name, gke_accelerator=entry["gkeAccelerator"], peak_flops=float(entry["peakFlops"])
        )
        for name, entry in raw["gpus"].items()
    }
    generations: dict[str, dict[str, Any]] = raw["tpuGenerations"]
    slices: dict[str, TpuSlice] = {}
    for name, entry in raw["tpuSlices"].items():
        match = _TPU_TYPE.match(name)
        if match is None:
            raise ValueError(f"accelerators.yaml: TPU slice {name!r} does not look like <generation>-<N>")
        generation = generations[match["generation"]]
        cores_per_chip = int(generation["coresPerChip"])
        if int(match["size"]) != entry["chips"] * cores_per_chip:
            raise ValueError(
                f"accelerators.yaml: {name} says {entry['chips']} chips, which its name contradicts"
            )
        slices[name] = TpuSlice(
            name=name,
            generation=match["generation"],
            gke_accelerator=generation["gkeAccelerator"],
            topology=entry["topology"],
            chips=int(entry["chips"]),
            hosts=int(entry["hosts"]),
            machine_type=entry["machineType"],
            peak_flops=float(generation["peakFlops"]),
        )
    return Tables(gpus=gpus, tpu_slices=slices, tokenizer_vocab=raw["tokenizers"])


def gpu_type(name: str) -> GpuType:
    return tables().gpus[name]


def tpu_slice(name: str) -> TpuSlice:
    return tables().tpu_slices[name]
