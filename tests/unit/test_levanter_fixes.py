"""The trainer's fixes to the pinned Levanter let its optimizers take a jitted step and change no numbers."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import pytest
from levanter.optim import AdamHConfig, MuonHConfig, OptimizerConfig

from speedrun_trainer.levanter_fixes import elementwise_max_in_hyperball_updates

pytestmark = pytest.mark.unit


def _one_jitted_step(config: OptimizerConfig, model: Any) -> Any:
    optimizer = config.build(10)
    state = optimizer.init(model)
    gradients = jax.tree.map(jnp.ones_like, model)

    @jax.jit
    def step(model: Any, state: Any, gradients: Any) -> Any:
        updates, _ = optimizer.update(gradients, state, model)
        return eqx.apply_updates(model, updates)

    return step(model, state, gradients)


@pytest.mark.parametrize("config", [AdamHConfig(learning_rate=1e-2), MuonHConfig(learning_rate=1e-2)])
def test_adamh_and_muonh_take_a_jitted_step_that_moves_a_weight_and_keeps_its_norm(
    config: OptimizerConfig,
) -> None:
    elementwise_max_in_hyperball_updates()
    model = hax.nn.Linear.init(hax.Axis("embed", 8), hax.Axis("mlp", 16), key=jax.random.PRNGKey(0))

    stepped = _one_jitted_step(config, model)

    before, after = model.weight.array, stepped.weight.array
    assert not jnp.allclose(before, after)
    assert jnp.linalg.norm(after) == pytest.approx(float(jnp.linalg.norm(before)), rel=1e-5)
