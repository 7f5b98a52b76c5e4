"""One JAX process per host of a multi-host run, joined through JAX's distributed initialisation.

A TPU slice's hosts find their coordinator, their number and their index in the environment GKE gives them.
CPU hosts standing in for a slice (``resources.cpu.hosts``) have no such environment: the driver tells each
host's task its slot — process 0's host address and a port free there, the number of hosts, the task's index —
and the processes exchange their collectives over TCP (gloo) instead of a TPU's interconnect.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

JAX_BIND_ENV = "JAX_COORDINATOR_BIND_ADDRESS"
"""JAX's own variable: where process 0 serves the coordinator (default ``[::]:PORT``, which a pod without
IPv6 cannot bind)."""


@dataclass(frozen=True)
class HostSlot:
    """What one host's task is told: whom to join, and as which process."""

    process_id: int
    num_processes: int
    coordinator: str
    """``HOST:PORT`` of process 0's coordinator."""


def free_coordinator_address() -> str:
    """This host's address and a port free on it now; run on host 0 before any host joins (the port is taken
    again by JAX's coordinator moments later)."""
    import ray

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        port = probe.getsockname()[1]
    return f"{ray.util.get_node_ip_address()}:{port}"  # type: ignore[no-untyped-call]


def slots(coordinator: str, hosts: int) -> list[HostSlot]:
    return [
        HostSlot(process_id=index, num_processes=hosts, coordinator=coordinator) for index in range(hosts)
    ]


def prepare_cpu_host(slot: HostSlot) -> None:
    """Before JAX starts its backends in this process: collectives across processes over gloo, and process 0's
    coordinator bound on every IPv4 address."""
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # type: ignore[no-untyped-call]
    if slot.process_id == 0:
        os.environ[JAX_BIND_ENV] = "0.0.0.0:" + slot.coordinator.rsplit(":", 1)[1]
