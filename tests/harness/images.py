"""The project's images, built with podman on a local Debian base and cached by a hash of their inputs.

They are built by ``docker/build.sh``, the command a user builds them with, with podman as its engine. No
registry is reachable here, so the base is made with ``debootstrap`` and ``podman import``; the script hands
it to the Dockerfiles in ``docker/`` as ``--build-arg BASE_IMAGE``. Their ``apt-get``/``pip`` steps need
Debian's mirror and PyPI, hence ``--network host`` and the host's CA bundle mounted for ``PIP_CERT``. Each
image's tag is a hash of everything that decides its content (Dockerfile, the files the build context
admits, build arguments, the base's tag): an unchanged tree finds its image and builds nothing. podman keeps
its storage in the harness cache, apart from any other podman user on the machine.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.utils.build

from harness import build
from harness.build import say

REPO_ROOT = Path(__file__).resolve().parents[2]
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
HOST_CERTS = "/etc/ssl/certs"
# Inside builds the host's CA bundle appears here (the Dockerfiles read it through PIP_CERT).
BUILD_CERTS = "/host-certs"


class ImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class ImageSpec:
    """One image of the project: which Dockerfile, which stage, which build arguments."""

    name: str
    dockerfile: str
    build_args: tuple[tuple[str, str], ...] = ()
    part: str = ""  # docker/build.sh --only: operator | trainer

    @property
    def repository(self) -> str:
        return f"localhost/{self.name}"

    def ref(self, tag: str) -> str:
        """The name docker/build.sh gives it: the trainer's tag ends in its accelerator."""
        accelerator = dict(self.build_args).get("ACCELERATOR")
        return f"{self.repository}:{tag}-{accelerator}" if accelerator else f"{self.repository}:{tag}"


BUILD_SCRIPT = "docker/build.sh"
TRAINER_CPU = ImageSpec(
    "speedrun-trainer", "docker/trainer.Dockerfile", (("ACCELERATOR", "cpu"),), part="trainer"
)
OPERATOR = ImageSpec("speedrun-operator", "docker/operator.Dockerfile", part="operator")
PROJECT_IMAGES = (TRAINER_CPU, OPERATOR)


@dataclass
class BuiltImage:
    spec: ImageSpec
    ref: str  # localhost/<name>:<input hash>
    seconds: float  # this run's time to get it: the build, or the cache lookup
    cached: bool
    cold_seconds: float | None = None  # the recorded time of its cold build


@dataclass
class ImageSet:
    base: BuiltImage
    images: dict[str, BuiltImage] = field(default_factory=dict)
    pause: BuiltImage | None = None

    def all(self) -> list[BuiltImage]:
        return [self.base, *self.images.values(), *([self.pause] if self.pause else [])]

    def summary(self) -> str:
        parts = []
        for image in self.all():
            how = "cached" if image.cached else "built"
            cold = f", cold build {image.cold_seconds:.0f} s" if image.cold_seconds else ""
            parts.append(f"{image.spec.name} {how} in {image.seconds:.1f} s{cold}")
        return "; ".join(parts)


def podman_dirs(cache: Path | None = None) -> tuple[Path, Path]:
    cache = cache or build.cache_dir()
    return cache / "podman" / "root", Path("/run/speedrun-podman")


def podman_argv(cache: Path | None = None) -> list[str]:
    """podman with our own storage, runc and cgroupfs (crun fails on this machine's cgroups v1 hybrid)."""
    exe = shutil.which("podman")
    if exe is None:
        raise ImageError("podman is not installed (`make e2e-packages` installs it)")
    root, runroot = podman_dirs(cache)
    return [
        exe,
        f"--root={root}",
        f"--runroot={runroot}",
        "--runtime=runc",
        "--cgroup-manager=cgroupfs",
        "--events-backend=file",
    ]


def podman(*args: str, cache: Path | None = None, timeout: float = 600) -> str:
    result = subprocess.run([*podman_argv(cache), *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise ImageError(f"podman {' '.join(args[:3])} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def run_logged(argv: Sequence[str], log: Path, timeout: float) -> None:
    """Run ``argv`` with its output appended to ``log``; on failure, raise with the log's last lines."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout).returncode
    if code != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise ImageError(f"{Path(argv[0]).name} failed (exit {code}); end of {log}:\n{tail}")


def image_exists(ref: str, cache: Path | None = None) -> bool:
    argv = [*podman_argv(cache), "image", "exists", ref]
    return subprocess.run(argv, capture_output=True, timeout=60).returncode == 0


# --- input hashes ------------------------------------------------------------------------------------------


def context_files(root: Path = REPO_ROOT) -> list[Path]:
    """The files the engine receives as the build context: ``.dockerignore`` applied by the Docker SDK's own
    matcher (the last matching pattern wins, ``!`` re-admits), sorted."""
    patterns = [
        line.strip()
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    admitted = docker.utils.build.exclude_paths(str(root), patterns)
    return sorted(root / relative for relative in admitted if (root / relative).is_file())


def input_hash(spec: ImageSpec, base_ref: str, root: Path = REPO_ROOT) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([spec.dockerfile, spec.build_args, base_ref]).encode())
    digest.update((root / spec.dockerfile).read_bytes())
    if (root / BUILD_SCRIPT).exists():
        digest.update((root / BUILD_SCRIPT).read_bytes())
    for path in context_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


# --- timings kept beside the images ------------------------------------------------------------------------


def _timings_file(cache: Path) -> Path:
    return cache / "podman" / "build-times.json"


def _record_build(cache: Path, ref: str, seconds: float) -> None:
    path = _timings_file(cache)
    data = _read_timings(cache)
    data[ref] = round(seconds, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _read_timings(cache: Path) -> dict[str, float]:
    try:
        data = json.loads(_timings_file(cache).read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items()} if isinstance(data, dict) else {}


# --- builds ------------------------------------------------------------------------------------------------

BASE_RECIPE = f"debootstrap --variant=minbase {DEBIAN_SUITE} {DEBIAN_MIRROR}"
BASE_SPEC = ImageSpec("speedrun-base", "(debootstrap)")


def ensure_base(cache: Path) -> BuiltImage:
    """A Debian bookworm base: debootstrap into a temporary folder, then ``podman import`` (~1 min cold)."""
    tag = hashlib.sha256(BASE_RECIPE.encode()).hexdigest()[:16]
    ref = f"{BASE_SPEC.repository}:{DEBIAN_SUITE}-{tag}"
    started = time.monotonic()
    if image_exists(ref, cache):
        return BuiltImage(BASE_SPEC, ref, time.monotonic() - started, True, _read_timings(cache).get(ref))
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise ImageError("debootstrap is not installed (`make e2e-packages` installs it)")
    say(f"making the Debian base image {ref} with debootstrap (~1 min)")
    log = cache / "logs" / "image-base.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="speedrun-base-", dir=cache) as tmp:
        rootfs = Path(tmp) / "rootfs"
        with log.open("a") as out:
            argv = [debootstrap, "--variant=minbase", DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR]
            code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=900).returncode
        if code != 0:
            raise ImageError(f"debootstrap failed (exit {code}); see {log}")
        # debootstrap leaves the mirror's address in sources.list, and a bookworm system needs the updates.
        (rootfs / "etc/apt/sources.list").write_text(
            f"deb {DEBIAN_MIRROR} {DEBIAN_SUITE} main\n"
            f"deb {DEBIAN_MIRROR} {DEBIAN_SUITE}-updates main\n"
            f"deb http://deb.debian.org/debian-security {DEBIAN_SUITE}-security main\n"
        )
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [*podman_argv(cache), "import", "-", ref], stdin=tar.stdout, capture_output=True, timeout=600
        )
        tar.wait(timeout=60)
        if imported.returncode != 0 or tar.returncode != 0:
            raise ImageError(f"podman import failed: {imported.stderr.decode(errors='replace')[-2000:]}")
    seconds = time.monotonic() - started
    _record_build(cache, ref, seconds)
    say(f"  base image made in {seconds:.0f} s")
    return BuiltImage(BASE_SPEC, ref, seconds, False, seconds)


def ensure_image(spec: ImageSpec, base: BuiltImage, cache: Path, root: Path = REPO_ROOT) -> BuiltImage:
    tag = input_hash(spec, base.ref, root)
    ref = spec.ref(tag)
    started = time.monotonic()
    if image_exists(ref, cache):
        return BuiltImage(spec, ref, time.monotonic() - started, True, _read_timings(cache).get(ref))
    log = cache / "logs" / f"image-{spec.name}.log"
    say(f"building {ref} with docker/build.sh and podman (log: {log})")
    accelerator = dict(spec.build_args).get("ACCELERATOR")
    argv = [
        str(root / BUILD_SCRIPT),
        "--only",
        spec.part,
        *(["--accelerator", accelerator] if accelerator else []),
        "--registry",
        "localhost",
        "--tag",
        tag,
        "--engine",
        " ".join(podman_argv(cache)),
        "--base-image",
        base.ref,
        "--",
        # Debian's mirror and PyPI through the host's network, its CA bundle for pip (PIP_CERT).
        "--network=host",
        f"--volume={HOST_CERTS}:{BUILD_CERTS}:ro",
        "--ulimit=nofile=20000:20000",
        f"--build-arg=PIP_CERT={BUILD_CERTS}/ca-certificates.crt",
        "--layers",
    ]
    run_logged(argv, log, timeout=1800)
    if not image_exists(ref, cache):  # podman build exits 0 when a signal stops it
        raise ImageError(f"docker/build.sh ended without the image {ref}; see {log}")
    seconds = time.monotonic() - started
    _record_build(cache, ref, seconds)
    say(f"  built {spec.name} in {seconds:.0f} s")
    _remove_older_tags(spec, ref, cache)
    return BuiltImage(spec, ref, seconds, False, seconds)


def _remove_older_tags(spec: ImageSpec, keep: str, cache: Path) -> None:
    """Each trainer build holds a 2 GB venv layer of its own: keep only the newest tag of each image."""
    listing = podman("images", "--format={{.Repository}}:{{.Tag}}", spec.repository, cache=cache)
    old = [ref for ref in listing.split() if ref != keep and ref.startswith(spec.repository + ":")]
    if old:
        # Not `image prune`: the build stage's dependency layer is untagged too, and it is the cache that
        # makes a code change rebuild in seconds.
        subprocess.run([*podman_argv(cache), "rmi", "--force", *old], capture_output=True, timeout=300)


PAUSE_SPEC = ImageSpec("speedrun-pause", "(FROM scratch)")


def ensure_pause(pause_binary: Path, cache: Path) -> BuiltImage:
    """The pod sandbox image: the statically linked pause program alone, ``FROM scratch``."""
    digest = hashlib.sha256(pause_binary.read_bytes()).hexdigest()[:16]
    ref = f"{PAUSE_SPEC.repository}:{digest}"
    started = time.monotonic()
    if image_exists(ref, cache):
        return BuiltImage(PAUSE_SPEC, ref, time.monotonic() - started, True, _read_timings(cache).get(ref))
    with tempfile.TemporaryDirectory(prefix="speedrun-pause-", dir=cache) as tmp:
        context = Path(tmp)
        shutil.copy2(pause_binary, context / "pause")
        (context / "Containerfile").write_text('FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n')
        podman("build", "--network=none", f"--tag={ref}", str(context), cache=cache)
    seconds = time.monotonic() - started
    _record_build(cache, ref, seconds)
    return BuiltImage(PAUSE_SPEC, ref, seconds, False, seconds)


def ensure_images(
    specs: Sequence[ImageSpec] = PROJECT_IMAGES,
    *,
    pause_binary: Path | None = None,
    cache: Path | None = None,
) -> ImageSet:
    """Find or build the base and each image (one build at a time per cache)."""
    cache = cache or build.cache_dir()
    # A lock of its own: image builds need not wait for Go builds, only for each other.
    with build.build_lock(cache / "podman"):
        base = ensure_base(cache)
        images = ImageSet(base, {spec.name: ensure_image(spec, base, cache) for spec in specs})
        if pause_binary is not None:
            images.pause = ensure_pause(pause_binary, cache)
    return images


def save_oci_archive(ref: str, target: Path, cache: Path | None = None) -> Path:
    """``podman save`` the image as an OCI archive (what ``ctr images import`` reads), kept by its tag."""
    if target.exists():
        return target
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.unlink(missing_ok=True)
    podman("save", "--format=oci-archive", f"--output={tmp}", ref, cache=cache, timeout=900)
    tmp.replace(target)
    return target


def image_config(ref: str, cache: Path | None = None) -> dict[str, Any]:
    """The image's configuration as the engine records it: User, Env, Cmd, Entrypoint, ExposedPorts, ..."""
    inspected = json.loads(podman("image", "inspect", ref, cache=cache))
    config: dict[str, Any] = inspected[0]["Config"]
    return config


def run_in_image(
    ref: str,
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    volumes: Mapping[str, str] | None = None,
    read_only: bool = False,
    cache: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run a command in a throw-away container without a network; ``volumes`` are mounted read-only."""
    argv = [
        *podman_argv(cache),
        "run",
        "--rm",
        "--network=none",
        "--ulimit=nofile=20000:20000",
        "--ulimit=nproc=20000:20000",
        *(f"--env={k}={v}" for k, v in (env or {}).items()),
        *(f"--volume={host}:{inside}:ro" for host, inside in (volumes or {}).items()),
        *(["--read-only"] if read_only else []),
        ref,
        *command,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def iter_refs(images: ImageSet) -> Iterator[str]:
    yield from (image.ref for image in images.all())


def main(argv: Sequence[str]) -> int:
    images = ensure_images()
    say("images: " + images.summary())
    for ref in iter_refs(images):
        say(f"  {ref}")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
