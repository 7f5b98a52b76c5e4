"""The SpeedrunJob API: pydantic models that are the one schema (the CRD is generated from them)."""

from speedrun_operator.api.base import API_VERSION, GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from speedrun_operator.api.dataset import DatasetSpec
from speedrun_operator.api.job import ObjectMeta, SpeedrunJob
from speedrun_operator.api.model import PRESETS, ModelShape, ModelSpec
from speedrun_operator.api.refs import EnvVar, SecretKeyRef, Toleration
from speedrun_operator.api.resources import CpuResources, GpuResources, ResourcesSpec, TpuResources
from speedrun_operator.api.spec import Author, SpeedrunJobSpec, TrackingSpec
from speedrun_operator.api.status import (
    Admission,
    Condition,
    ConditionType,
    Phase,
    Progress,
    Results,
    RunInfo,
    SpeedrunJobStatus,
)
from speedrun_operator.api.train import BatchScheduleStep, TrainSpec
from speedrun_operator.api.validation import FieldError, InvalidSpeedrunJob, parse_job, parse_spec

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "PRESETS",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "Admission",
    "Author",
    "BatchScheduleStep",
    "Condition",
    "ConditionType",
    "CpuResources",
    "DatasetSpec",
    "EnvVar",
    "FieldError",
    "GpuResources",
    "InvalidSpeedrunJob",
    "ModelShape",
    "ModelSpec",
    "ObjectMeta",
    "Phase",
    "Progress",
    "ResourcesSpec",
    "Results",
    "RunInfo",
    "SecretKeyRef",
    "SpeedrunJob",
    "SpeedrunJobSpec",
    "SpeedrunJobStatus",
    "Toleration",
    "TpuResources",
    "TrackingSpec",
    "TrainSpec",
    "parse_job",
    "parse_spec",
]
