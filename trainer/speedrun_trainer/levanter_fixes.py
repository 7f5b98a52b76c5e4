"""Fixes for bugs in the pinned Levanter (1.2.dev1644) that stop a model family from training at all.

Each is applied once per process before training and changes no numbers: drop one when Levanter fixes it.
"""

from __future__ import annotations

from typing import Any

import jax
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
