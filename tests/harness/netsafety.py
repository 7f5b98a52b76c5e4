"""The real node's network, made so that nothing leaves the machine, and every trace of it removed afterwards.

The harness creates one bridge with a /24 of pod addresses (its gateway on the host is where the API server,
CoreDNS and the GCS emulator listen for pods). Its own nft table rejects, on the machine, any packet to kwok's
fake pod range (the API server's service proxy would otherwise send KubeRay's dashboard calls for kwok pods
out through the default route) and drops forwarding between the bridge and every other interface. Pods get no
default route (see the CNI config in :mod:`harness.node`).

Only one real node can exist per machine: kube-proxy's nft tables and the kubelet's iptables chains have fixed
names. :func:`node_lock` serialises harness runs that want one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.build import say

BRIDGE = "speedrun0"
POD_CIDR = "10.244.7.0/24"
GATEWAY = "10.244.7.1"
NFT_TABLE = "speedrun_harness"
# Tables kube-proxy (mode nftables) creates; chains the kubelet creates in iptables' filter/nat/mangle tables.
KUBE_PROXY_TABLES = (("ip", "kube-proxy"), ("ip6", "kube-proxy"))
KUBE_CHAIN_PREFIXES = ("KUBE-", "CNI-")
IPTABLES_TABLES = ("filter", "nat", "mangle")
LOCK_FILE = Path("/run/speedrun-real-node.lock")


class NetworkError(RuntimeError):
    pass


def _run(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, input=input)
    if check and result.returncode != 0:
        raise NetworkError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result


@contextlib.contextmanager
def node_lock(*, wait: bool = True, timeout: float = 1800) -> Iterator[bool]:
    """Held for the life of a real node: a second harness run wanting one waits (up to ``timeout``) for the
    first to finish. With ``wait=False`` it yields whether it got the lock at once."""
    with LOCK_FILE.open("w") as handle:
        owned = _try_lock(handle.fileno())
        if not owned and wait:
            say("another harness run owns the real node on this machine; waiting for it to stop")
            deadline = time.monotonic() + timeout
            while not owned:
                if time.monotonic() > deadline:
                    raise NetworkError(f"the real node stayed busy for {timeout:.0f} s (lock {LOCK_FILE})")
                time.sleep(1)
                owned = _try_lock(handle.fileno())
        try:
            yield owned
        finally:
            if owned:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def nft_ruleset(kwok_cidr: str, service_cidr: str) -> str:
    return f"""\
table inet {NFT_TABLE} {{
    chain output {{
        type filter hook output priority 0; policy accept;
        ip daddr {kwok_cidr} oifname != "{BRIDGE}" reject with icmp type admin-prohibited
    }}
    chain forward {{
        type filter hook forward priority 0; policy accept;
        iifname "{BRIDGE}" oifname != "{BRIDGE}" reject with icmp type admin-prohibited
        oifname "{BRIDGE}" iifname != "{BRIDGE}" drop
        ip daddr {kwok_cidr} reject with icmp type admin-prohibited
        ip saddr {POD_CIDR} ip daddr != {{ {POD_CIDR}, {service_cidr} }} drop
    }}
}}
"""


def create(kwok_cidr: str, service_cidr: str) -> None:
    """The bridge with the gateway address, and the nft table; after removing a previous run's leftovers."""
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            raise NetworkError(f"`{tool}` is missing (`make e2e-packages` installs it)")
    remove()
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    _run("nft", "-f", "-", input=nft_ruleset(kwok_cidr, service_cidr))


def remove() -> list[str]:
    """Remove the bridge, pods' veths, our nft table, kube-proxy's tables and the kubelet's iptables chains.

    Returns what it found and removed (empty when nothing was left).
    """
    removed: list[str] = []
    if _link_exists(BRIDGE):
        for port in _bridge_ports():
            _run("ip", "link", "del", port, check=False)
            removed.append(f"veth {port}")
        _run("ip", "link", "del", BRIDGE)
        removed.append(f"bridge {BRIDGE}")
    for family, table in (("inet", NFT_TABLE), *KUBE_PROXY_TABLES):
        if _nft_table_exists(family, table):
            _run("nft", "delete", "table", family, table)
            removed.append(f"nft table {family} {table}")
    removed += _remove_iptables_chains()
    return removed


def leftovers() -> list[str]:
    """Whatever of the node's network is still there (a test asserts this is empty after the suite)."""
    found = []
    if _link_exists(BRIDGE):
        found.append(f"bridge {BRIDGE}")
    for family, table in (("inet", NFT_TABLE), *KUBE_PROXY_TABLES):
        if _nft_table_exists(family, table):
            found.append(f"nft table {family} {table}")
    for binary in _iptables_binaries():
        for table in IPTABLES_TABLES:
            found += [f"{binary} -t {table} chain {c}" for c in _our_chains(binary, table)]
    return found


def _link_exists(name: str) -> bool:
    return _run("ip", "link", "show", name, check=False).returncode == 0


def _bridge_ports() -> list[str]:
    out = _run("ip", "-j", "link", "show", "master", BRIDGE, check=False)
    if out.returncode != 0 or not out.stdout.strip():
        return []
    return [str(link["ifname"]) for link in json.loads(out.stdout)]


def _nft_table_exists(family: str, table: str) -> bool:
    if shutil.which("nft") is None:
        return False
    return _run("nft", "list", "table", family, table, check=False).returncode == 0


def _iptables_binaries() -> list[str]:
    return [b for b in ("iptables", "ip6tables") if shutil.which(b)]


def _our_chains(binary: str, table: str) -> list[str]:
    out = _run(binary, "-w", "-t", table, "-S", check=False)
    if out.returncode != 0:
        return []
    chains = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "-N" and parts[1].startswith(KUBE_CHAIN_PREFIXES):
            chains.append(parts[1])
    return chains


def _remove_iptables_chains() -> list[str]:
    removed = []
    for binary in _iptables_binaries():
        for table in IPTABLES_TABLES:
            chains = _our_chains(binary, table)
            if not chains:
                continue
            # First every rule that jumps to one of them (from built-in chains too), then the chains.
            rules = _run(binary, "-w", "-t", table, "-S", check=False).stdout.splitlines()
            for rule in rules:
                parts = rule.split()
                if parts[:1] == ["-A"] and any(c in parts for c in chains) and parts[1] not in chains:
                    _run(binary, "-w", "-t", table, "-D", *parts[1:], check=False)
            for chain in chains:
                _run(binary, "-w", "-t", table, "-F", chain, check=False)
            for chain in chains:
                _run(binary, "-w", "-t", table, "-X", chain, check=False)
                removed.append(f"{binary} -t {table} chain {chain}")
    return removed


@dataclass(frozen=True)
class PodNetwork:
    """The addresses pods and the host's services agree on."""

    bridge: str = BRIDGE
    pod_cidr: str = POD_CIDR
    gateway: str = GATEWAY
