"""Run info for a spec: what Marin's speedrun computes before and after training."""

from __future__ import annotations

from speedrun_operator.api.spec import SpeedrunJobSpec
from speedrun_operator.api.status import RunInfo
from speedrun_operator.runinfo.flops import flops_per_token, total_trainable_params

ESTIMATE_MFU = 0.5
"""The utilisation the rough time estimate assumes."""


def seq_len_of(spec: SpeedrunJobSpec) -> int:
    return spec.train.seq_len or spec.model.resolve().seq_len


def total_tokens(spec: SpeedrunJobSpec) -> int:
    return spec.train.total_sequences() * seq_len_of(spec)


def compute_run_info(spec: SpeedrunJobSpec) -> RunInfo:
    shape = spec.model.resolve()
    vocab = spec.dataset.resolved_vocab_size
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
