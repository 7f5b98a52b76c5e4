"""Fixes for bugs in the pinned Levanter (1.2.dev1644) that stop a model family or an optimizer from
training at all.

Each is applied once per process before training and changes no numbers: drop one when Levanter fixes it.
"""

from __future__ import annotations

import importlib
from typing import Any

import jax
import jax.numpy as jnp
import levanter.tracker

_MARK = "_speedrun_stops_gradients"


def log_inside_gradients() -> None:
    """Levanter's Mixtral logs its router statistics with ``levanter.tracker.jit_log`` inside the loss, and
    the io_callback that logs them has no differentiation rule, so every Mixtral training step fails with
    "IO callbacks do not support JVP". Logged values never need gradients: with them stopped, JAX runs the
    callback on the forward values and the statistics are logged as Levanter meant."""
    if getattr(levanter.tracker.jit_log, _MARK, False):
        return
    original = levanter.tracker.jit_log

    def jit_log(metrics: Any, *, step: int | None = None) -> None:
        original(jax.tree.map(jax.lax.stop_gradient, metrics), step=step)

    setattr(jit_log, _MARK, True)
    levanter.tracker.jit_log = jit_log


HYPERBALL_OPTIMIZER_MODULES = ("levanter.optim.adamh", "levanter.optim.muonh")


def elementwise_max_in_hyperball_updates() -> None:
    """AdamH's and MuonH's update keeps each weight's norm by dividing by ``max(norm, 1e-10)`` with Python's
    ``max``, which asks a traced array for its truth value, so their first jitted step fails. The guard is
    meant elementwise; ``jnp.maximum`` is that guard, and it is the builtin ``max`` those modules' names
    resolve to that is replaced, nothing else in them."""
    for name in HYPERBALL_OPTIMIZER_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "max", None) is not jnp.maximum:
            module.max = jnp.maximum  # type: ignore[attr-defined]
