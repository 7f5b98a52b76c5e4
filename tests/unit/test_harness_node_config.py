"""The real node's configuration as data: no way out for pods, local images only, tags that follow inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import images, netsafety, node

pytestmark = pytest.mark.unit

SERVICE_CIDR = "10.0.0.0/24"
KWOK_CIDR = "10.250.0.0/16"


def test_pods_get_routes_to_the_pod_and_service_ranges_only_and_no_masquerade(tmp_path: Path) -> None:
    plugins: list[dict[str, Any]] = node.cni_config(tmp_path, SERVICE_CIDR)["plugins"]  # type: ignore[assignment]
    (bridge,) = plugins
    assert bridge["isDefaultGateway"] is False
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["routes"] == [{"dst": SERVICE_CIDR}]
    assert bridge["ipam"]["ranges"] == [[{"subnet": netsafety.POD_CIDR, "gateway": netsafety.GATEWAY}]]
    assert bridge["bridge"] == netsafety.BRIDGE


def test_the_machine_rejects_kwok_pod_addresses_and_forwarding_off_the_bridge() -> None:
    rules = netsafety.nft_ruleset(KWOK_CIDR, SERVICE_CIDR)
    assert f'ip daddr {KWOK_CIDR} oifname != "{netsafety.BRIDGE}" reject' in rules
    assert f'iifname "{netsafety.BRIDGE}" oifname != "{netsafety.BRIDGE}" reject' in rules
    assert f'oifname "{netsafety.BRIDGE}" iifname != "{netsafety.BRIDGE}" drop' in rules


def test_containerd_uses_the_local_pause_image_its_own_paths_and_the_settings_this_machine_needs(
    tmp_path: Path,
) -> None:
    config = node.containerd_config(tmp_path, "localhost/speedrun-pause:abc")
    assert 'sandbox_image = "localhost/speedrun-pause:abc"' in config
    for line in ("restrict_oom_score_adj = true", "disable_apparmor = true", "SystemdCgroup = false"):
        assert line in config
    assert f'address = "{node.CONTAINERD_SOCKET}"' in config
    assert f'Root = "{node.RUNC_ROOT}"' in config
    assert f'conf_dir = "{tmp_path / "cni"}"' in config


def test_the_kubelet_serves_on_the_bridge_registers_tainted_and_uses_coredns_there(tmp_path: Path) -> None:
    ports = {"kubelet": 20250, "kubelet-healthz": 20248}
    config = node.kubelet_config(tmp_path, tmp_path / "ca.crt", ports)
    assert config["address"] == netsafety.GATEWAY
    assert config["clusterDNS"] == [netsafety.GATEWAY]
    assert config["registerWithTaints"] == [{"key": "pool", "value": "local", "effect": "NoSchedule"}]
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["readOnlyPort"] == 0
    json.dumps(config)  # written as JSON, which the kubelet reads as YAML


def test_coredns_answers_cluster_names_only() -> None:
    corefile = node.coredns_corefile(Path("/k"))
    assert f"bind {netsafety.GATEWAY}" in corefile
    assert "kubernetes cluster.local" in corefile
    assert "forward" not in corefile


def test_the_build_context_is_what_dockerignore_admits() -> None:
    files = {str(p.relative_to(images.REPO_ROOT)) for p in images.context_files()}
    assert {"pyproject.toml", "README.md", "docker/speedrun-venv.sh"} <= files
    assert any(f.startswith("operator/speedrun_operator/") for f in files)
    assert any(f.startswith("trainer/speedrun_trainer/") for f in files)
    assert not any(f.startswith(("tests/", ".venv/", "docker/trainer")) for f in files)
    assert not any("__pycache__" in f or f.endswith(".pyc") or ".egg-info" in f for f in files)


def test_an_image_tag_changes_with_any_input_and_only_then(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("*\n!app\n**/__pycache__\n")
    (tmp_path / "Dockerfile").write_text("FROM base\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("print(1)\n")
    (tmp_path / "notes.txt").write_text("not in the context\n")
    spec = images.ImageSpec("x", "Dockerfile")
    first = images.input_hash(spec, "base:1", tmp_path)
    assert images.input_hash(spec, "base:1", tmp_path) == first
    (tmp_path / "notes.txt").write_text("changed, but ignored\n")
    (tmp_path / "app" / "__pycache__").mkdir()
    (tmp_path / "app" / "__pycache__" / "main.pyc").write_bytes(b"\0")
    assert images.input_hash(spec, "base:1", tmp_path) == first
    assert images.input_hash(spec, "base:2", tmp_path) != first
    assert images.input_hash(images.ImageSpec("x", "Dockerfile", (("A", "1"),)), "base:1", tmp_path) != first
    (tmp_path / "app" / "main.py").write_text("print(2)\n")
    assert images.input_hash(spec, "base:1", tmp_path) != first


def test_only_id_references_whose_tags_are_gone_are_pruned_from_containerd() -> None:
    listing = (
        "REF TYPE DIGEST SIZE PLATFORMS LABELS\n"
        "localhost/speedrun-trainer:new application/vnd.oci.image.manifest.v1+json sha256:aaa 2.0 GiB "
        "linux/amd64 io.cri-containerd.image=managed\n"
        "sha256:111 application/vnd.oci.image.manifest.v1+json sha256:aaa 2.0 GiB linux/amd64 -\n"
        "sha256:222 application/vnd.oci.image.manifest.v1+json sha256:bbb 2.0 GiB linux/amd64 -\n"
    )
    assert node.orphan_ids(listing) == ["sha256:222"]
