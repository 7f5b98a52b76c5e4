"""Levanter's parameter and FLOP counts for a Llama, re-derived so the operator needs no JAX.

``tests/unit/test_runinfo_matches_levanter.py`` proves these equal Levanter's own
``LlamaConfig.total_trainable_params`` and ``lm_flops_per_token``.
"""

from __future__ import annotations

from speedrun_operator.api.model import LlamaShape


def total_trainable_params(shape: LlamaShape, vocab_size: int) -> int:
    head_dim = shape.actual_head_dim
    attention = (
        shape.hidden_dim * head_dim * shape.num_heads  # q
        + 2 * shape.hidden_dim * head_dim * shape.num_kv_heads  # k, v
        + head_dim * shape.num_heads * shape.hidden_dim  # o
    )
    mlp = 3 * shape.hidden_dim * shape.intermediate_dim  # gate, up, down
    layer = attention + mlp + 2 * shape.hidden_dim  # two RMSNorms
    transformer = shape.num_layers * layer + shape.hidden_dim  # final RMSNorm
    embedding = vocab_size * shape.hidden_dim
    lm_head = 0 if shape.tie_word_embeddings else embedding
    return transformer + embedding + lm_head


def flops_per_token(shape: LlamaShape, vocab_size: int, seq_len: int | None = None) -> float:
    """Forward FLOPs per token, attention over a full ``seq_len`` window (the model's by default).

    As Levanter does, the per-head width here is hidden/heads even when headDim is set.
    """
    seq = shape.seq_len if seq_len is None else seq_len
    h, heads, kv = shape.hidden_dim, shape.num_heads, shape.num_kv_heads
    head_dim = h / heads
    mlp = 2 * 3 * h * shape.intermediate_dim
    qkv = 2 * h * (heads * head_dim + 2 * kv * head_dim)
    out = 2 * h * h
    attention = (
        2 * seq**2 * heads * head_dim + 3 * seq * seq * heads + 2 * seq * seq * head_dim * heads
    ) / seq
    lm_head = 2 * h * vocab_size
    return shape.num_layers * (mlp + qkv + out + attention) + lm_head
