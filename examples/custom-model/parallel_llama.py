"""A Llama whose blocks run attention and the MLP side by side: each block adds both, computed from one
normalised input, to the residual stream (x + attn(norm(x)) + mlp(norm(x))). The MLP is a plain two-layer
one with a squared-ReLU activation instead of Llama's gated SiLU.

The speedrun example of a model that lives in the submission's own code: a Levanter ``LmConfig`` subclass,
registered under its own name, and the model it builds, from Levanter's and haliax's layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import haliax as hax
import haliax.nn as hnn
import jax.random as jrandom
from haliax import Axis, NamedArray
from haliax.jax_utils import maybe_rng_split, shaped_rng_split
from haliax.nn.scan import Stacked
from levanter.layers.attention import Attention, AttentionConfig, AttentionMask
from levanter.layers.rotary import DefaultRotaryEmbeddingsConfig
from levanter.models.lm_model import LmConfig, LmHeadModel
from levanter.utils.flop_utils import lm_flops_per_token


@LmConfig.register_subclass("parallel_llama")
@dataclass(frozen=True)
class ParallelLlamaConfig(LmConfig["ParallelLlamaModel"]):
    seq_len: int = 1024
    hidden_dim: int = 512
    intermediate_dim: int = 2048
    num_layers: int = 6
    num_heads: int = 8
    num_kv_heads: int = 8
    rope_theta: float = 10000.0
    layer_norm_epsilon: float = 1e-5
    tie_word_embeddings: bool = True
    gradient_checkpointing: bool = True

    Pos = property(lambda self: Axis("position", self.seq_len))
    KeyPos = property(lambda self: self.Pos.alias("key_position"))
    Embed = property(lambda self: Axis("embed", self.hidden_dim))
    Mlp = property(lambda self: Axis("mlp", self.intermediate_dim))
    Layers = property(lambda self: Axis("layer", self.num_layers))

    def __post_init__(self) -> None:
        if self.hidden_dim % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads {self.num_heads} must divide hidden_dim {self.hidden_dim}, "
                f"and num_kv_heads {self.num_kv_heads} must divide num_heads"
            )

    @property
    def model_type(self) -> type[ParallelLlamaModel]:
        return ParallelLlamaModel

    def attention(self) -> AttentionConfig:
        return AttentionConfig(
            Embed=self.Embed,
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            rope=DefaultRotaryEmbeddingsConfig(theta=self.rope_theta),
        )

    def norm(self) -> hnn.RmsNorm:
        return hnn.RmsNorm.init(self.Embed, eps=self.layer_norm_epsilon, use_bias=False)

    def flops_per_token(self, vocab_size: int) -> float:
        # Levanter's count for a transformer of this shape with an ungated (two-matrix) MLP.
        return float(
            lm_flops_per_token(
                hidden_dim=self.hidden_dim,
                intermediate_dim=self.intermediate_dim,
                num_layers=self.num_layers,
                num_kv_heads=self.num_kv_heads,
                num_heads=self.num_heads,
                seq_len=self.seq_len,
                vocab_size=vocab_size,
                glu=False,
            )
        )

    def total_trainable_params(self, vocab_size: int) -> int:
        head = self.hidden_dim // self.num_heads
        attention = 2 * self.hidden_dim * head * (self.num_heads + self.num_kv_heads)
        block = attention + 2 * self.hidden_dim * self.intermediate_dim + self.hidden_dim  # one norm
        embeddings = vocab_size * self.hidden_dim * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * block + self.hidden_dim + embeddings  # plus the final norm


class SquaredReluMlp(eqx.Module):
    up: hnn.Linear
    down: hnn.Linear

    @staticmethod
    def init(config: ParallelLlamaConfig, *, key) -> SquaredReluMlp:
        k_up, k_down = jrandom.split(key)
        up = hnn.Linear.init(In=config.Embed, Out=config.Mlp, key=k_up, use_bias=False, out_first=True)
        down = hnn.Linear.init(In=config.Mlp, Out=config.Embed, key=k_down, use_bias=False, out_first=True)
        return SquaredReluMlp(up, down)

    def __call__(self, x: NamedArray, *, key=None) -> NamedArray:
        k_up, k_down = maybe_rng_split(key, 2)
        hidden = hax.nn.relu(self.up(x, key=k_up))
        return self.down(hidden * hidden, key=k_down)


class ParallelBlock(eqx.Module):
    norm: hnn.RmsNorm
    attention: Attention
    mlp: SquaredReluMlp

    @staticmethod
    def init(config: ParallelLlamaConfig, *, key) -> ParallelBlock:
        k_attn, k_mlp = jrandom.split(key)
        return ParallelBlock(
            config.norm(),
            Attention.init(config.attention(), key=k_attn),
            SquaredReluMlp.init(config, key=k_mlp),
        )

    def __call__(
        self, x: NamedArray, mask: AttentionMask | NamedArray | None, *, key=None, pos_ids=None
    ) -> NamedArray:
        k_attn, k_mlp = maybe_rng_split(key, 2)
        normed = self.norm(x)
        return x + self.attention(normed, mask, key=k_attn, pos_ids=pos_ids) + self.mlp(normed, key=k_mlp)


class ParallelLlamaModel(LmHeadModel[ParallelLlamaConfig]):
    _config: ParallelLlamaConfig = eqx.field(static=True)
    embeddings: hnn.Embedding
    blocks: Stacked[ParallelBlock]
    final_norm: hnn.RmsNorm
    lm_head: hnn.Linear | None

    @property
    def config(self) -> ParallelLlamaConfig:
        return self._config

    @property
    def Vocab(self) -> Axis:
        return self.embeddings.Vocab

    @classmethod
    def init(cls, Vocab: Axis, config: ParallelLlamaConfig, *, key) -> ParallelLlamaModel:
        k_emb, k_blocks, k_head = jrandom.split(key, 3)
        embeddings = hnn.Embedding.init(Vocab, config.Embed, key=k_emb)
        blocks = Stacked.init(
            config.Layers, ParallelBlock, gradient_checkpointing=config.gradient_checkpointing
        )(config, key=shaped_rng_split(k_blocks, config.num_layers))
        lm_head = (
            None
            if config.tie_word_embeddings
            else hnn.Linear.init(In=config.Embed, Out=Vocab, key=k_head, use_bias=False, out_first=True)
        )
        return ParallelLlamaModel(config, embeddings, blocks, config.norm(), lm_head)

    def activations(
        self, input_ids: NamedArray, attn_mask=None, *, key=None, pos_ids: NamedArray | None = None
    ) -> NamedArray:
        keys = maybe_rng_split(key, self._config.num_layers) if key is not None else None
        x = self.embeddings.embed(input_ids)
        x = self.blocks.fold(x, mask=attn_mask, key=keys, pos_ids=pos_ids)
        return self.final_norm(x)

    def get_lm_head(self) -> NamedArray:
        return self.embeddings.weight if self.lm_head is None else self.lm_head.weight

    def resize_vocab(self, new_size: int, key=None) -> ParallelLlamaModel:
        raise NotImplementedError("ParallelLlamaModel keeps the vocabulary it was built with")
