"""How the cluster harness finds binaries: env overrides, KUBEBUILDER_ASSETS, then its own pinned cache."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pytest

from harness import build, versions

pytestmark = pytest.mark.unit

APISERVER = versions.BY_NAME["kube-apiserver"]
SCHEDULER = versions.BY_NAME["kube-scheduler"]


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def _cache_entry(cache: Path, binary: versions.GoBinary, recipe: str) -> Path:
    path = _executable(cache / "bin" / binary.filename)
    manifest = {"recipe": recipe, "seconds": 123.4}
    (cache / "bin" / f"{binary.filename}.json").write_text(json.dumps(manifest))
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [b.env_override for b in versions.BINARIES] + ["KUBEBUILDER_ASSETS"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPEEDRUN_CACHE_DIR", str(tmp_path / "cache"))


def test_the_cache_lives_where_speedrun_cache_dir_says_and_holds_the_go_caches(tmp_path: Path) -> None:
    cache = build.cache_dir()
    assert cache == (tmp_path / "cache").resolve()
    env = build.go_env(cache)
    for key in ("GOPATH", "GOMODCACHE", "GOCACHE"):
        assert Path(env[key]).is_relative_to(cache)
    assert env["GOTOOLCHAIN"] == "local"


def test_an_explicit_path_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mine = _executable(tmp_path / "my-apiserver")
    monkeypatch.setenv("SPEEDRUN_KUBE_APISERVER", str(mine))
    assert APISERVER.env_override == "SPEEDRUN_KUBE_APISERVER"
    found = build.find_existing(APISERVER)
    assert found is not None and (found.path, found.source) == (mine, "env")


def test_an_explicit_path_that_is_not_executable_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPEEDRUN_KUBE_APISERVER", str(tmp_path / "missing"))
    with pytest.raises(build.BuildError, match="SPEEDRUN_KUBE_APISERVER"):
        build.find_existing(APISERVER)


def test_kubebuilder_assets_serve_etcd_apiserver_and_kubectl_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assets = tmp_path / "assets"
    for name in ("etcd", "kube-apiserver", "kubectl", "kube-scheduler"):
        _executable(assets / name)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    for name in ("etcd", "kube-apiserver", "kubectl"):
        found = build.find_existing(versions.BY_NAME[name])
        assert found is not None and (found.path, found.source) == (assets / name, "kubebuilder-assets")
    # Not part of the envtest convention: still the harness's own pinned build.
    assert build.find_existing(SCHEDULER) is None


def test_a_cached_binary_is_reused_while_its_pin_and_recipe_hold() -> None:
    cache = build.cache_dir()
    path = _cache_entry(cache, SCHEDULER, build.recipe_hash(SCHEDULER))
    found = build.find_existing(SCHEDULER)
    assert found is not None and (found.path, found.source, found.build_seconds) == (path, "cache", 123.4)
    assert build.cold_build_seconds() == {"kube-scheduler": 123.4}


def test_a_changed_recipe_means_a_rebuild() -> None:
    cache = build.cache_dir()
    _cache_entry(cache, SCHEDULER, "an-older-recipe")
    assert build.find_existing(SCHEDULER) is None


def test_a_new_pin_is_a_new_cache_entry_and_a_new_recipe() -> None:
    bumped = dataclasses.replace(SCHEDULER, version="v1.37.3")
    assert bumped.filename == "kube-scheduler-v1.37.3" != SCHEDULER.filename
    assert build.recipe_hash(bumped) != build.recipe_hash(SCHEDULER)


def test_kubernetes_binaries_are_stamped_with_their_version() -> None:
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"):
        flags = versions.BY_NAME[name].ldflags
        assert f"-X k8s.io/component-base/version.gitVersion={versions.KUBERNETES_VERSION}" in flags
        assert "-X k8s.io/component-base/version.gitMinor=37" in flags


def test_the_kubernetes_wrapper_module_replaces_every_staging_module() -> None:
    text = build._gomod_text(versions.KUBERNETES_WRAPPER)
    assert "require k8s.io/kubernetes v1.37.2\n" in text
    replaces = [line.strip() for line in text.splitlines() if "=>" in line]
    assert len(replaces) == len(versions.KUBERNETES_STAGING_MODULES) == 31
    assert "k8s.io/client-go => k8s.io/client-go v0.37.2" in replaces


def test_every_binary_can_be_overridden_and_has_a_pinned_version() -> None:
    names = {b.name for b in versions.BINARIES}
    assert names >= {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
        "kwok",
        "ray-operator",
        "helm",
        "fake-gcs-server",
        "prometheus",
        "promtool",
    }
    for binary in versions.BINARIES:
        assert binary.version.startswith("v") and binary.version.count(".") == 2
        assert binary.env_override.startswith("SPEEDRUN_") and "-" not in binary.env_override


def test_prometheus_and_promtool_are_prometheus_3_without_cloud_service_discovery() -> None:
    for name in ("prometheus", "promtool"):
        binary = versions.BY_NAME[name]
        assert binary.package == f"github.com/prometheus/prometheus/cmd/{name}"
        assert binary.version == "v0.316.0" and binary.env_override == f"SPEEDRUN_{name.upper()}"
        assert binary.tags == ("remove_all_sd",)
        assert "-X github.com/prometheus/common/version.Version=3.16.0" in binary.ldflags


def test_build_tags_are_part_of_the_recipe_and_binaries_without_them_keep_their_cache_key() -> None:
    tagged = dataclasses.replace(SCHEDULER, tags=("remove_all_sd",))
    assert build.recipe_hash(tagged) != build.recipe_hash(SCHEDULER)
    # The hash of a recipe as it was before GoBinary had tags: binaries built then are not rebuilt.
    before_tags = {k: v for k, v in dataclasses.asdict(SCHEDULER).items() if k != "tags"}
    blob = json.dumps(before_tags, sort_keys=True).encode()
    assert build.recipe_hash(SCHEDULER) == hashlib.sha256(blob).hexdigest()[:16]


def test_unknown_binaries_are_refused() -> None:
    with pytest.raises(build.BuildError, match="unknown"):
        build.ensure(["kube-proxy-9000"])


def test_progress_goes_to_the_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    build.say("hello")
    assert "[harness] hello" in capfd.readouterr().err
    assert os.environ["SPEEDRUN_CACHE_DIR"]
