"""Behaviour of the SpeedrunJob models beyond the schema: chips, tokens, presets, batch schedules."""

from __future__ import annotations

from typing import Any

import pytest

from speedrun_operator.api import ResourcesSpec, Results, TrainSpec
from speedrun_operator.runinfo import humanize

pytestmark = pytest.mark.unit


def resources(data: dict[str, Any]) -> ResourcesSpec:
    return ResourcesSpec.model_validate(data)


@pytest.mark.parametrize(
    ("tpu", "chips", "label"),
    [
        ({"type": "v4-8"}, 4, "v4-8"),
        ({"type": "v4-16"}, 8, "v4-16"),
        ({"type": "v5p-8"}, 4, "v5p-8"),
        ({"type": "v5litepod-8"}, 8, "v5litepod-8"),
        ({"type": "v6e-8"}, 8, "v6e-8"),
        ({"type": "v4-16", "slices": 2}, 16, "2xv4-16"),
    ],
)
def test_tpu_chip_counts_follow_each_generations_naming(tpu: dict[str, Any], chips: int, label: str) -> None:
    spec = resources({"tpu": tpu})
    assert spec.num_chips == chips
    assert spec.describe() == label


def test_peak_flops_come_from_the_table_unless_overridden() -> None:
    assert resources({"gpu": {"type": "H100", "count": 8}}).peak_flops_per_device == 989.5e12
    assert resources({"tpu": {"type": "v6e-8"}}).peak_flops_per_device == 918e12
    overridden = resources({"gpu": {"type": "A10"}, "peakFlopsPerChip": 1e14})
    assert overridden.peak_flops_per_device == 1e14


def test_a_batch_schedule_counts_sequences_step_by_step() -> None:
    train = TrainSpec.model_validate(
        {
            "batchSchedule": [{"startStep": 0, "batchSize": 64}, {"startStep": 10, "batchSize": 128}],
            "steps": 25,
            "learningRate": 1e-3,
        }
    )
    assert train.total_sequences() == 10 * 64 + 15 * 128
    assert train.batch_sizes() == [(0, 64), (10, 128)]


def test_fields_are_camel_case_on_the_wire_and_snake_case_in_python() -> None:
    train = TrainSpec.model_validate({"batchSize": 8, "steps": 3, "learningRate": 0.1, "stepsPerEval": 2})
    assert train.steps_per_eval == 2
    assert train.model_dump(exclude_none=True, exclude_defaults=True) == {
        "batchSize": 8,
        "steps": 3,
        "learningRate": 0.1,
        "stepsPerEval": 2,
    }


@pytest.mark.parametrize(
    ("value", "text"), [(999, "999"), (262_464, "262K"), (8_241_312, "8.24M"), (1.4e9, "1.4B")]
)
def test_humanized_counts(value: float, text: str) -> None:
    assert humanize(value) == text


def test_results_carry_the_bpb_to_four_decimals_for_kubectl_get_and_keep_the_exact_value() -> None:
    info = {
        "eval/paloma/c4_en/bpb": 2.4647250175476074,
        "training_time": 1.0,
        "training_hardware_flops": 1.0,
        "model_flops": 1.0,
        "total_tokens": 1,
        "run_completion_timestamp": "2026-11-26 00:00:00 UTC",
    }
    results = Results.from_run_info(info, "gs://b/r.json")
    assert (results.eval_bpb, results.eval_bpb_display) == (2.4647250175476074, "2.4647")
    assert results.eval_set == "paloma/c4_en"
    assert Results.model_validate(results.model_dump(mode="json")) == results
    assert (
        Results.from_run_info({**info, "eval/paloma/c4_en/bpb": None}, "gs://b/r.json").eval_bpb_display
        is None
    )


def test_results_of_a_run_without_paloma_name_the_set_it_evaluated() -> None:
    info = {
        "eval/paloma/c4_en/bpb": None,
        "eval_dataset": "bundled/kjv",
        "eval_bpb": 1.5,
        "training_time": 1.0,
        "training_hardware_flops": 4.0,
        "model_flops": 1.0,
        "total_tokens": 1,
        "run_completion_timestamp": "2026-11-26 00:00:00 UTC",
    }
    results = Results.from_run_info(info, "gs://b/r.json")
    assert (results.eval_bpb, results.eval_set, results.mfu) == (1.5, "bundled/kjv", 25.0)
