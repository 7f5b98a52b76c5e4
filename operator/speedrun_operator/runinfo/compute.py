"""Run info for a spec: what Marin's speedrun computes before and after training."""

from __future__ import annotations

from dataclasses import dataclass

from speedrun_operator.api.spec import SpeedrunJobSpec
from speedrun_operator.api.status import RunInfo
from speedrun_operator.runinfo.flops import flops_per_token, total_trainable_params

ESTIMATE_MFU = 0.5
"""The utilisation the rough time estimate assumes."""


@dataclass(frozen=True)
class ModelCounts:
    """A custom model's own counts, computed where its code runs (the trainer, or ``speedrun info``)."""

    parameters: int
    flops_per_token: float


class NeedsModelCode(ValueError):
    """Run info of a custom model was asked for without the counts only its code can give."""


def seq_len_of(spec: SpeedrunJobSpec) -> int:
    """Tokens per sequence: train.seqLen, else the model's (a custom model's spec always has train.seqLen)."""
    return spec.train.seq_len or spec.model.resolve().seq_len


def total_tokens(spec: SpeedrunJobSpec) -> int:
    return spec.train.total_sequences() * seq_len_of(spec)


def compute_run_info(spec: SpeedrunJobSpec, counts: ModelCounts | None = None) -> RunInfo:
    """Marin's numbers for ``spec``. A custom model's parameters and FLOPs per token are its code's
    (``counts``); raises NeedsModelCode without them."""
    vocab = spec.dataset.resolved_vocab_size
    if counts is not None:
        parameters, per_token = counts.parameters, counts.flops_per_token
    elif spec.model.is_custom:
        raise NeedsModelCode(
            f"the run info of model {spec.model.describe()} comes from its code; "
            "speedrun info imports it, the operator has it once the trainer has run it"
        )
    else:
        shape = spec.model.resolve()
        parameters = total_trainable_params(shape, vocab)
        per_token = flops_per_token(shape, vocab, seq_len_of(spec))
    tokens = total_tokens(spec)
    model_flops = 3 * per_token * tokens
    per_chip = spec.resources.peak_flops_per_device
    peak = per_chip * spec.resources.num_chips
    return RunInfo(
        parameters=parameters,
        parameters_display=humanize(parameters),
        vocab_size=vocab,
        flops_per_token=per_token,
        total_tokens=tokens,
        model_flops=model_flops,
        device_type=spec.resources.device_type,
        num_chips=spec.resources.num_chips,
        peak_flops_per_chip=per_chip,
        peak_flops=peak,
        estimated_seconds_at_50pct_mfu=model_flops / (peak * ESTIMATE_MFU),
    )


def humanize(value: float) -> str:
    """1234567 -> '1.23M'; the suffixes people use for parameter and FLOP counts."""
    for threshold, suffix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3g}{suffix}"
    return f"{value:.3g}"
