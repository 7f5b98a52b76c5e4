"""What the operator promises the trainer, and the trainer the operator: written once, imported by both.

- **Environment.** Every Ray head and worker container gets these variables (``builders/pods.py`` sets them,
  the trainer reads them).
- **Output layout.** Where a run's files live under the output prefix (the trainer writes them, the operator
  reads the results back and ``speedrun export`` copies them).
- **Placement.** How the hardware of a spec becomes hosts: replicas (slices) times hosts per replica, the
  accelerators each host holds, the GKE selectors and tolerations that put a host on its node pool, and the
  Ray resource each worker host advertises so the trainer places one task per host.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speedrun_operator import accelerators

if TYPE_CHECKING:
    from speedrun_operator.api.resources import ResourcesSpec

# --- Environment -----------------------------------------------------------------------------------------

JOB_NAMESPACE_ENV = "SPEEDRUN_JOB_NAMESPACE"
"""Namespace of the SpeedrunJob a pod runs, e.g. ``team-a``; with JOB_NAME_ENV, where progress is patched."""
JOB_NAME_ENV = "SPEEDRUN_JOB_NAME"
"""Name of the SpeedrunJob a pod runs, e.g. ``hello-world-nano-a100``."""
IMAGE_ENV = "SPEEDRUN_IMAGE"
"""The image the trainer runs in, recorded in the results, e.g. ``registry/speedrun-trainer:0.1.0``."""
OUTPUT_ENV = "SPEEDRUN_OUTPUT"
"""The output prefix when the job names none: the operator's default, e.g. ``gs://bucket/speedruns``."""
WANDB_API_KEY_ENV = "WANDB_API_KEY"
"""W&B's own variable, filled from ``spec.tracking.apiKeySecret`` by secretKeyRef only."""
HF_TOKEN_ENV = "HF_TOKEN"
"""Hugging Face's own variable, filled from ``spec.hfTokenSecret`` by secretKeyRef only."""
DEFAULT_VALIDATION_ENV = "SPEEDRUN_DEFAULT_VALIDATION_SETS"
"""The validation sets a job that names none evaluates, as JSON ``{NAME: [URL, ...]}``: the operator's setting
of the same name, passed on to every pod (see ``eval_sets``)."""

CODE_DIR_ENV = "SPEEDRUN_CODE_DIR"
"""Where a custom model's code is on this host: the operator mounts ``spec.model.code.configMap`` there and
sets this variable; ``speedrun run`` sets it to the folder of the job's file."""
CODE_MOUNT_PATH = "/opt/speedrun/code"
"""The folder the operator mounts a custom model's ConfigMap at, in the head and every worker pod."""
CODE_VOLUME = "speedrun-code"


def code_files(folder: Path) -> dict[str, bytes]:
    """A custom model's code in ``folder``: every ``.py`` file under it by its '/'-separated relative path.
    Hidden entries are skipped, which leaves out the ``..data`` links a mounted ConfigMap also holds."""
    found: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*.py")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        found[relative.as_posix()] = path.read_bytes()
    return found


def code_digest(files: Mapping[str, bytes]) -> str:
    """``sha256:<hex>`` over the files sorted by path, each as its path, a NUL, its length, a NUL, then its
    bytes: the same code gives the same digest from a ConfigMap, a bucket or a folder."""
    digest = hashlib.sha256()
    for name in sorted(files):
        content = files[name]
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    return "sha256:" + digest.hexdigest()


# --- Output layout ---------------------------------------------------------------------------------------

RESULTS_FILE = "speedrun_results.json"
"""Marin's results file: what the leaderboard reads."""
CONFIG_FILE = "speedrun_job.yaml"
"""The SpeedrunJob the trainer ran, beside its results: together they make a leaderboard folder."""
FAILURE_FILE = "speedrun_failure.json"


DRIVER_LOG = "driver"
"""The process name of a RayJob's driver in its log file's name; each worker host's is ``host_log``'s."""


def host_log(index: int) -> str:
    """The process name of worker host ``index`` (its training task) in its log file's name: ``host0``."""
    return f"host{index}"


def log_name(attempt: str, process: str) -> str:
    """``<attempt>-<process>.log``, e.g. ``20261201T220000000000Z-host0.log``: the attempt's id sorts by start
    time and holds no ``-``."""
    return f"{attempt}-{process}.log"


def parse_log_name(name: str) -> tuple[str, str] | None:
    """The attempt and process of a log file's name, None for any other file."""
    attempt, sep, process = name.removesuffix(".log").partition("-")
    return (attempt, process) if sep and name.endswith(".log") and attempt and process else None


def join(prefix: str, *parts: str) -> str:
    """Join URL or path segments with '/', keeping the scheme of ``prefix`` intact."""
    return "/".join([prefix.rstrip("/"), *(part.strip("/") for part in parts)])


def output_prefix(spec_output: str | None, default: str | None) -> str | None:
    """The job's own output prefix, else the operator's (or the local run's) default."""
    return spec_output or default


@dataclass(frozen=True)
class OutputLayout:
    """A run's files: results, config, step records, W&B and logs under ``<output>/<job>/``; checkpoints
    under ``<output>/checkpoints/<job>``; token caches, shared by runs, under ``<output>/caches``."""

    output: str
    """The output prefix: a URL (gs://, s3://, file://) or a path."""
    job: str

    @property
    def job_dir(self) -> str:
        return join(self.output, self.job)

    @property
    def results(self) -> str:
        return join(self.job_dir, RESULTS_FILE)

    @property
    def config(self) -> str:
        return join(self.job_dir, CONFIG_FILE)

    @property
    def failure(self) -> str:
        """Why the run cannot train at all (its model's code is broken), as JSON ``{"reason", "message"}``:
        the trainer writes it and ends its attempt without an error, so KubeRay does not retry code that
        fails the same way each time; the operator fails the job with it once the RayJob has ended."""
        return join(self.job_dir, FAILURE_FILE)

    @property
    def steps(self) -> str:
        """One file of per-step records per attempt: what training_time is summed from."""
        return join(self.job_dir, "steps")

    @property
    def wandb(self) -> str:
        return join(self.job_dir, "wandb")

    @property
    def logs(self) -> str:
        """The trainer's own output, one file per attempt per process (``log_name``): what is left of a run's
        log lines once KubeRay has deleted its cluster."""
        return join(self.job_dir, "logs")

    def log(self, attempt: str, process: str) -> str:
        return join(self.logs, log_name(attempt, process))

    @property
    def checkpoints(self) -> str:
        return join(self.output, "checkpoints", self.job)

    @property
    def caches(self) -> str:
        return join(self.output, "caches")


# --- Placement -------------------------------------------------------------------------------------------

WORKER_RESOURCE = "speedrun-worker"
"""A custom Ray resource each worker host advertises once (``rayStartParams.resources``), so the trainer's
driver can place exactly one training task per host."""

GKE_GPU_LABEL = "cloud.google.com/gke-accelerator"
GKE_TPU_LABEL = "cloud.google.com/gke-tpu-accelerator"
GKE_TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
GPU_RESOURCE = "nvidia.com/gpu"
TPU_RESOURCE = "google.com/tpu"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
"""GKE taints GPU nodes ``nvidia.com/gpu=present:NoSchedule``."""
TPU_TOLERATION = {"key": TPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
"""GKE taints TPU nodes ``google.com/tpu=present:NoSchedule``."""


@dataclass(frozen=True)
class Placement:
    """Where a run's training processes go: one Ray worker host per pod, one JAX process per host."""

    kind: str
    """``gpu``, ``tpu`` or ``cpu``."""
    group_name: str
    """The Ray worker group, e.g. ``gpu-a100``, ``tpu-v4-16``, ``cpu``."""
    replicas: int
    """Worker-group replicas: TPU slices, else 1."""
    hosts_per_replica: int
    """Hosts (pods) per replica: a multi-host TPU slice has several, so do CPU hosts standing in for one
    (``resources.cpu.hosts``); a GPU run has one."""
    accelerator_resource: str | None
    """The Kubernetes resource of the accelerators (``nvidia.com/gpu``, ``google.com/tpu``), None on CPU."""
    chips_per_host: int
    """Accelerator chips each host holds (1 for a CPU host, which counts as one chip)."""
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    machine_type: str | None = None
    """The GKE machine type of a TPU host (what a node pool for this slice is created with)."""

    @property
    def hosts(self) -> int:
        """Worker hosts in the run, over all replicas: the number of training tasks and JAX processes."""
        return self.replicas * self.hosts_per_replica

    @property
    def chips(self) -> int:
        return self.hosts * self.chips_per_host

    @property
    def multihost(self) -> bool:
        """Several JAX processes: they must join through JAX's distributed initialisation. A single host
        must skip it, since JAX would otherwise take any pod with KUBERNETES_SERVICE_HOST for a member."""
        return self.hosts > 1

    @property
    def cpu_hosts(self) -> bool:
        """Several CPU hosts standing in for a multi-host slice. The trainer's driver tells them their JAX
        coordinator (a TPU slice's hosts find theirs in the environment GKE gives them)."""
        return self.kind == "cpu" and self.multihost

    def describe(self) -> str:
        """Where the pods go: ``2 hosts x 4 google.com/tpu on tpu-v4-podslice 2x2x2 (ct4p-hightpu-4t)``."""
        hosts = f"{self.hosts} host{'s' if self.hosts > 1 else ''}"
        what = f" x {self.chips_per_host} {self.accelerator_resource}" if self.accelerator_resource else ""
        where = " ".join(self.node_selector.values())
        machine = f" ({self.machine_type})" if self.machine_type else ""
        return f"{hosts}{what}" + (f" on {where}{machine}" if where else "")

    @property
    def ray_resources_per_host(self) -> dict[str, float]:
        """What one host's training task holds in Ray: the host itself and its GPUs (no CPU: Levanter's
        cache writers are Ray tasks that need the host's CPUs while the training task waits for them)."""
        bundle = {WORKER_RESOURCE: 1.0}
        if self.kind == "gpu":
            bundle["GPU"] = float(self.chips_per_host)
        return bundle


def placement(resources: ResourcesSpec) -> Placement:
    """The placement of a spec's hardware (from the tables in ``data/accelerators.yaml``)."""
    if resources.gpu is not None:
        gpu = accelerators.gpu_type(resources.gpu.type)
        return Placement(
            kind="gpu",
            group_name=f"gpu-{gpu.name.lower()}",
            replicas=1,
            hosts_per_replica=1,
            accelerator_resource=GPU_RESOURCE,
            chips_per_host=resources.gpu.count,
            node_selector={GKE_GPU_LABEL: gpu.gke_accelerator} if gpu.gke_accelerator else {},
            tolerations=[dict(GPU_TOLERATION)],
        )
    if resources.tpu is not None:
        shape = accelerators.tpu_slice(resources.tpu.type)
        return Placement(
            kind="tpu",
            group_name=f"tpu-{shape.name}",
            replicas=resources.tpu.slices,
            hosts_per_replica=shape.hosts,
            accelerator_resource=TPU_RESOURCE,
            chips_per_host=shape.chips_per_host,
            node_selector={GKE_TPU_LABEL: shape.gke_accelerator, GKE_TPU_TOPOLOGY_LABEL: shape.topology},
            tolerations=[dict(TPU_TOLERATION)],
            machine_type=shape.machine_type,
        )
    return Placement(
        kind="cpu",
        group_name="cpu",
        replicas=1,
        hosts_per_replica=resources.cpu.hosts if resources.cpu is not None else 1,
        accelerator_resource=None,
        chips_per_host=1,
    )
