"""Levanter's parameter and FLOP counts for each model family, re-derived so the operator needs no JAX.

``tests/unit/test_runinfo_matches_levanter.py`` proves these equal Levanter's own ``total_trainable_params``
and ``flops_per_token`` of LlamaConfig, Qwen3Config, Olmo2Config and MixtralConfig. They are Levanter's
counts, which the leaderboard compares, including what they leave out: Llama's and Qwen3's count no QK-norm
weights, OLMo 2's count its QK-norms as two hiddenDim-wide vectors, and none counts bias terms.
"""

from __future__ import annotations

from speedrun_operator.api.model import ModelShape


def total_trainable_params(shape: ModelShape, vocab_size: int) -> int:
    h = shape.hidden_dim
    # Levanter's OLMo 2 and Mixtral counts take the head width as hidden / heads whatever else is set.
    head_dim = shape.actual_head_dim if shape.family in ("llama", "qwen3") else h // shape.num_heads
    attention = (
        h * head_dim * shape.num_heads  # q
        + 2 * h * head_dim * shape.num_kv_heads  # k, v
        + head_dim * shape.num_heads * h  # o
    )
    norms = 2 * h  # before attention and before the MLP
    if shape.moe is not None:
        experts = shape.moe.n_routed_experts + shape.moe.n_shared_experts
        mlp = h * shape.moe.n_routed_experts + 3 * experts * h * shape.intermediate_dim  # router, experts
    else:
        mlp = 3 * h * shape.intermediate_dim  # gate, up, down
    if shape.family == "olmo2":
        norms += 2 * h  # Levanter counts OLMo 2's query and key norms as hidden-wide
    if shape.hybrid_norm:
        norms += 2 * h  # after attention and after the MLP
    transformer = shape.num_layers * (attention + mlp + norms) + h  # final norm
    if shape.input_embedding_norm:
        transformer += h
    embedding = vocab_size * h
    lm_head = 0 if shape.tie_word_embeddings else embedding
    return transformer + embedding + lm_head


def flops_per_token(shape: ModelShape, vocab_size: int, seq_len: int | None = None) -> float:
    """Forward FLOPs per token, attention over a full ``seq_len`` window (the model's by default).

    As Levanter does, the per-head width here is hidden/heads even when headDim is set, and the MLP term
    counts the experts a token goes through (routed and shared) plus the router.
    """
    seq = shape.seq_len if seq_len is None else seq_len
    h, heads, kv = shape.hidden_dim, shape.num_heads, shape.num_kv_heads
    head_dim = h / heads
    moe = shape.moe
    experts_per_token = moe.num_experts_per_tok + moe.n_shared_experts if moe is not None else 1
    mlp = 2 * 3 * h * shape.intermediate_dim * experts_per_token
    if moe is not None and moe.n_routed_experts > 1:
        mlp += 2 * h * moe.n_routed_experts  # router
    qkv = 2 * h * (heads * head_dim + 2 * kv * head_dim)
    out = 2 * h * h
    attention = (
        2 * seq**2 * heads * head_dim + 3 * seq * seq * heads + 2 * seq * seq * head_dim * heads
    ) / seq
    lm_head = 2 * h * vocab_size
    return shape.num_layers * (mlp + qkv + out + attention) + lm_head
