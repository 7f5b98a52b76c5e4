"""Build (once) and find the binaries of the local cluster.

Every binary is built from its Go module into a cache the harness owns::

    ${SPEEDRUN_CACHE_DIR:-~/.cache/speedrun-operator}/
        bin/<name>-<version>          the binary
        bin/<name>-<version>.json     its recipe hash and how long it took to build
        src/<wrapper>-<version>/      generated wrapper Go modules (k8s.io/kubernetes, etcd)
        share/                        files taken from Go modules: kwok stages, KubeRay CRDs
        go/                           GOPATH, GOMODCACHE and GOCACHE of these builds
        logs/build-<name>.log         the output of each build

A binary is rebuilt only when its pin or recipe changes (see :mod:`harness.versions`). An existing binary can
be used instead: ``SPEEDRUN_<NAME>=/path`` (e.g. ``SPEEDRUN_KUBE_APISERVER``) or, for etcd, kube-apiserver and
kubectl, a ``KUBEBUILDER_ASSETS`` directory. Builds run one after the other, under ``nice``, so that a 2-core
machine stays usable. Only the standard library is used, so this runs before the virtualenv exists:
``python3 -m harness build`` (with ``tests/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness import versions
from harness.versions import GoBinary, WrapperModule

Source = Literal["env", "kubebuilder-assets", "cache", "built"]

PROGRESS_EVERY_S = 30.0


def say(message: str) -> None:
    """Progress for a human: straight to the terminal, even while pytest captures output."""
    stream = sys.__stderr__ or sys.stderr
    print(f"[harness] {message}", file=stream, flush=True)


def cache_dir() -> Path:
    configured = os.environ.get("SPEEDRUN_CACHE_DIR")
    base = Path(configured) if configured else Path.home() / ".cache" / "speedrun-operator"
    return base.expanduser().resolve()


def go_env(cache: Path) -> dict[str, str]:
    """The environment of every `go` command: Go caches inside the harness's own cache directory."""
    env = dict(os.environ)
    env.update(
        GOPATH=str(cache / "go"),
        GOMODCACHE=str(cache / "go" / "pkg" / "mod"),
        GOCACHE=str(cache / "go" / "build-cache"),
        GOFLAGS="-buildvcs=false",
        GOTOOLCHAIN="local",
    )
    return env


def go_version() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "`go` is not on PATH; install Go 1.26+ or point SPEEDRUN_<NAME>/KUBEBUILDER_ASSETS at binaries"
        )
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Resolved:
    name: str
    path: Path
    source: Source
    build_seconds: float | None = None  # how long its (last) build took, when the harness built it


def recipe_hash(binary: GoBinary) -> str:
    """A hash of everything that decides the binary's content besides the Go toolchain."""
    recipe = dataclasses.asdict(binary)
    if not recipe["tags"]:
        del recipe["tags"]  # binaries without tags keep the hash they had before the field existed
    blob = json.dumps(recipe, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _manifest_path(cache: Path, binary: GoBinary) -> Path:
    return cache / "bin" / f"{binary.filename}.json"


def read_manifest(cache: Path, binary: GoBinary) -> dict[str, object] | None:
    path = _manifest_path(cache, binary)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_existing(binary: GoBinary, cache: Path | None = None) -> Resolved | None:
    """The binary to use without building anything, if there is one."""
    override = os.environ.get(binary.env_override)
    if override:
        path = Path(override).expanduser()
        if not _executable(path):
            raise BuildError(f"{binary.env_override}={override} is not an executable file")
        return Resolved(binary.name, path, "env")
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and binary.in_kubebuilder_assets:
        path = Path(assets).expanduser() / binary.name
        if _executable(path):
            return Resolved(binary.name, path, "kubebuilder-assets")
    cache = cache or cache_dir()
    path = cache / "bin" / binary.filename
    manifest = read_manifest(cache, binary)
    if _executable(path) and manifest is not None and manifest.get("recipe") == recipe_hash(binary):
        seconds = manifest.get("seconds")
        return Resolved(
            binary.name, path, "cache", float(seconds) if isinstance(seconds, int | float) else None
        )
    return None


@contextlib.contextmanager
def build_lock(cache: Path) -> Iterator[None]:
    """One builder at a time per cache (two test sessions starting together must not build twice)."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "build.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another process is building into {cache}; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_logged(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path, what: str) -> None:
    """Run a (long) command under nice with its output in ``log``, printing a line now and then."""
    log.parent.mkdir(parents=True, exist_ok=True)
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.Popen([*nice, *argv], cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
        next_note = started + PROGRESS_EVERY_S
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                if time.monotonic() >= next_note:
                    say(f"  … {what}: {time.monotonic() - started:.0f} s so far (log: {log})")
                    next_note += PROGRESS_EVERY_S
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise BuildError(f"{what} failed (exit {proc.returncode}); last lines of {log}:\n{tail}")


def _gomod_text(wrapper: WrapperModule) -> str:
    lines = [
        f"module speedrun.local/{wrapper.name}",
        "",
        "go 1.26.0",
        "",
        f"require {wrapper.module} {wrapper.version}",
    ]
    if wrapper.replaces:
        lines += ["", "replace ("]
        lines += [f"\t{old} => {new} {version}" for old, new, version in wrapper.replaces]
        lines.append(")")
    return "\n".join(lines) + "\n"


def _tools_go_text(wrapper: WrapperModule) -> str:
    imports = "".join(f'\t_ "{pkg}"\n' for pkg in wrapper.imports)
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports})\n"


def prepare_wrapper(wrapper: WrapperModule, cache: Path, env: Mapping[str, str]) -> Path:
    """Write the wrapper module and resolve its dependencies (`go mod tidy`) when it changed."""
    src = cache / "src" / wrapper.dirname
    src.mkdir(parents=True, exist_ok=True)
    files = {"go.mod": _gomod_text(wrapper)}
    if wrapper.imports:
        files["tools.go"] = _tools_go_text(wrapper)
    if wrapper.main_go:
        files["main.go"] = wrapper.main_go
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    stamp = src / ".harness-generated"
    if stamp.exists() and stamp.read_text() == digest and (src / "go.sum").exists():
        return src
    say(f"preparing wrapper module {wrapper.module}@{wrapper.version} (go mod tidy, downloads modules)")
    for name, text in files.items():
        (src / name).write_text(text)
    started = time.monotonic()
    _run_logged(
        ["go", "mod", "tidy"],
        cwd=src,
        env=env,
        log=cache / "logs" / f"tidy-{wrapper.name}.log",
        what=f"go mod tidy for {wrapper.name}",
    )
    stamp.write_text(digest)
    say(f"  wrapper {wrapper.name} ready in {time.monotonic() - started:.0f} s")
    return src


def build(binary: GoBinary, cache: Path | None = None) -> Resolved:
    """Build ``binary`` into the cache (unconditionally) and record how long it took."""
    cache = cache or cache_dir()
    env = go_env(cache)
    bindir = cache / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    target = bindir / binary.filename
    log = cache / "logs" / f"build-{binary.name}.log"
    ldflags = " ".join(binary.ldflags)
    tags = ["-tags", ",".join(binary.tags)] if binary.tags else []
    started = time.monotonic()
    say(f"building {binary.name} {binary.version} (log: {log})")
    tmp = bindir / f".{binary.filename}.tmp"
    if binary.wrapper is not None:
        src = prepare_wrapper(binary.wrapper, cache, env)
        _run_logged(
            ["go", "build", *tags, "-ldflags", ldflags, "-o", str(tmp), binary.package],
            cwd=src,
            env=env,
            log=log,
            what=f"building {binary.name}",
        )
    else:
        gobin = cache / "go" / "gobin" / binary.filename
        shutil.rmtree(gobin, ignore_errors=True)
        gobin.mkdir(parents=True)
        _run_logged(
            ["go", "install", *tags, "-ldflags", ldflags, f"{binary.package}@{binary.version}"],
            cwd=cache,
            env={**env, "GOBIN": str(gobin)},
            log=log,
            what=f"building {binary.name}",
        )
        produced = [p for p in gobin.iterdir() if p.is_file()]
        if len(produced) != 1:
            raise BuildError(f"`go install {binary.package}` left {produced} in {gobin}, expected one binary")
        shutil.move(produced[0], tmp)
        shutil.rmtree(gobin, ignore_errors=True)
    os.replace(tmp, target)
    seconds = time.monotonic() - started
    manifest = {
        "name": binary.name,
        "version": binary.version,
        "recipe": recipe_hash(binary),
        "seconds": round(seconds, 1),
        "go": go_version(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _manifest_path(cache, binary).write_text(json.dumps(manifest, indent=2) + "\n")
    say(f"built {binary.name} {binary.version} in {seconds:.1f} s")
    return Resolved(binary.name, target, "built", seconds)


def ensure(names: Sequence[str] | None = None, cache: Path | None = None) -> dict[str, Resolved]:
    """Find or build each named binary (all by default), in the pinned build order."""
    cache = cache or cache_dir()
    wanted = [b for b in versions.BINARIES if names is None or b.name in names]
    unknown = set(names or ()) - {b.name for b in versions.BINARIES}
    if unknown:
        raise BuildError(f"unknown binaries: {sorted(unknown)}")
    found: dict[str, Resolved] = {}
    missing: list[GoBinary] = []
    for binary in wanted:
        existing = find_existing(binary, cache)
        if existing is None:
            missing.append(binary)
        else:
            found[binary.name] = existing
    if missing:
        started = time.monotonic()
        say(f"building {len(missing)} binaries into {cache / 'bin'}: {', '.join(b.name for b in missing)}")
        with build_lock(cache):
            for binary in missing:
                # Another process may have built it while this one waited for the lock.
                found[binary.name] = find_existing(binary, cache) or build(binary, cache)
        say(f"builds done in {time.monotonic() - started:.0f} s")
    return {b.name: found[b.name] for b in wanted}


def binary(name: str) -> Path:
    """The path of one binary, built first if needed: ``build.binary("fake-gcs-server")``."""
    return ensure([name])[name].path


def cold_build_seconds(cache: Path | None = None) -> dict[str, float]:
    """The recorded build time of each cached binary (its last cold or pin-change build)."""
    cache = cache or cache_dir()
    times: dict[str, float] = {}
    for binary in versions.BINARIES:
        manifest = read_manifest(cache, binary)
        seconds = manifest.get("seconds") if manifest else None
        if isinstance(seconds, int | float):
            times[binary.name] = float(seconds)
    return times


def format_build_times(times: Mapping[str, float]) -> str:
    if not times:
        return "no recorded builds"
    parts = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items())
    return f"{parts}; total {sum(times.values()) / 60:.1f} min"


# --- files taken from Go modules ---------------------------------------------------------------------------


def module_dir(module: str, version: str, cache: Path | None = None) -> Path:
    """The unpacked source of ``module@version`` in the harness's module cache (downloaded if needed)."""
    cache = cache or cache_dir()
    env = go_env(cache)
    direct = Path(env["GOMODCACHE"]) / f"{_escape_module(module)}@{version}"
    if (direct / "go.mod").exists():
        return direct
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        cwd=cache,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise BuildError(f"go mod download {module}@{version} failed: {out.stdout}{out.stderr}")
    return Path(json.loads(out.stdout)["Dir"])


def _escape_module(module: str) -> str:
    # The module cache spells upper-case letters as '!' + lower case.
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in module)


def kwok_stages_file(cache: Path | None = None) -> Path:
    """kwok's standard stages (node initialize/heartbeat, pod ready/complete/delete) as one --config file."""
    cache = cache or cache_dir()
    module, version = versions.KWOK_MODULE
    target = cache / "share" / f"kwok-{version}" / "stages.yaml"
    if target.exists():
        return target
    root = module_dir(module, version, cache)
    docs: list[str] = []
    for stage_dir in versions.KWOK_STAGE_DIRS:
        for path in sorted((root / stage_dir).glob("*.yaml")):
            if path.name != "kustomization.yaml":
                docs.append(f"# {stage_dir}/{path.name}\n" + path.read_text().strip() + "\n")
    if not docs:
        raise BuildError(f"no kwok stages found under {root}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("---\n".join(docs))
    return target


def kuberay_crd_dir(cache: Path | None = None) -> Path:
    """KubeRay's CRDs (RayCluster, RayJob, RayService, ...) copied out of its module."""
    cache = cache or cache_dir()
    module, version = versions.KUBERAY_MODULE
    target = cache / "share" / f"kuberay-{version}" / "crds"
    if target.is_dir() and any(target.glob("*.yaml")):
        return target
    source = module_dir(module, version, cache) / versions.KUBERAY_CRD_DIR
    crds = sorted(source.glob("*.yaml"))
    if not crds:
        raise BuildError(f"no KubeRay CRDs under {source}")
    target.mkdir(parents=True, exist_ok=True)
    for crd in crds:
        shutil.copyfile(crd, target / crd.name)
    return target


def main(argv: Sequence[str]) -> int:
    names = list(argv) or None
    resolved = ensure(names)
    for item in resolved.values():
        say(f"{item.name}: {item.path} ({item.source})")
    kwok_stages_file()
    kuberay_crd_dir()
    say("recorded build times: " + format_build_times(cold_build_seconds()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
