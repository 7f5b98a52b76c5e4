"""Train one SpeedrunJob with Levanter and publish its results: the body of ``speedrun train`` and ``run``."""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from speedrun_operator import contract, eval_sets
from speedrun_operator.api import Progress, SpeedrunJob
from speedrun_operator.api.dataset import BUNDLED
from speedrun_operator.contract import IMAGE_ENV, OUTPUT_ENV
from speedrun_operator.eval_sets import ValidationSets
from speedrun_operator.runinfo import compute_run_info, humanize, seq_len_of
from speedrun_trainer.model_code import LoadedModel
from speedrun_trainer.multihost import HostSlot, prepare_cpu_host
from speedrun_trainer.paths import DEFAULT_LOCAL_OUTPUT, RunPaths
from speedrun_trainer.progress import ProgressEstimator
from speedrun_trainer.results import RunOutcome, config_digest, write_config, write_submission
from speedrun_trainer.status_reporter import StatusReporter
from speedrun_trainer.step_log import EvalRecord, StepRecord, StepRecorder, new_attempt_id, read_history

logger = logging.getLogger(__name__)


class ProgressReporter(Protocol):
    def report_progress(self, progress: Progress) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TrainResult:
    results_url: str
    run_info: dict[str, Any]


class RunMonitor:
    """The sink the step tracker feeds: records every step and eval, and passes progress to reporters.

    Every host of a multi-host slice trains and feeds its own monitor; only the primary one (JAX process 0,
    known once Levanter has initialised JAX, before the first step) records and reports, so the run has one
    set of step records and one writer of its status.
    """

    def __init__(
        self,
        recorder: StepRecorder,
        estimator: ProgressEstimator,
        reporters: list[ProgressReporter],
        primary: Callable[[], bool],
    ):
        self.recorder = recorder
        self.estimator = estimator
        self.reporters = reporters
        self.primary = primary

    def on_step(self, record: StepRecord) -> None:
        self.estimator.add(record)
        if not self.primary():
            return
        self.recorder.add_step(record)
        progress = self.estimator.progress()
        if progress is not None:
            for reporter in self.reporters:
                reporter.report_progress(progress)

    def on_eval(self, record: EvalRecord) -> None:
        if self.primary():
            self.recorder.add_eval(record)

    def before_checkpoint(self, record: StepRecord) -> None:
        if not self.primary():
            return
        # Not passed to the estimator: the tracker reports the same step again right after the checkpoint.
        self.recorder.add_step(record)
        try:
            self.recorder.flush()
        except Exception:
            # Training goes on; the records stay pending and the background flush retries them.
            logger.exception("could not write the step records before the checkpoint at step %d", record.step)


def configure_logging() -> None:
    """This trainer's messages at INFO, other libraries' at WARNING: Ray and JAX are chatty at INFO."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("speedrun_trainer").setLevel(logging.INFO)


def resolve_output(job: SpeedrunJob, output: str | None) -> str:
    """The output prefix; a plain path becomes absolute, since Ray's workers write caches there too."""
    chosen = output or job.spec.output or os.environ.get(OUTPUT_ENV) or DEFAULT_LOCAL_OUTPUT
    return chosen if "://" in chosen else os.path.abspath(chosen)


def run_id_for(job: SpeedrunJob) -> str:
    from speedrun_trainer.wandb_tracking import safe_run_id

    return safe_run_id(job.name, config_digest(job).removeprefix("sha256:"))


def train_job(
    job: SpeedrunJob,
    *,
    output: str | None = None,
    status: StatusReporter | None = None,
    console: bool = False,
    local_ray: bool = False,
    default_validation: ValidationSets | None = None,
    host: HostSlot | None = None,
    attempt: str | None = None,
) -> TrainResult:
    """Train ``job`` to the end (resuming from its latest checkpoint if an earlier attempt left one) and write
    ``<output>/<job>/speedrun_results.json`` with the job's YAML beside it.

    ``status`` patches the SpeedrunJob; ``console`` shows a progress bar and a results table; ``local_ray``
    starts a Ray of its own instead of joining the one in RAY_ADDRESS. ``default_validation`` is evaluated
    when the job names no validation sets (default: the operator's list in the environment, else Paloma's
    c4_en).

    CPU hosts standing in for a slice (``resources.cpu.hosts``) train one per Ray task: this process starts
    them on the Ray it is connected to (``local_ray``: one of its own, on this machine), unless it is one of
    them, its ``host`` slot given. ``attempt`` names this attempt's step records (default: a new id; the
    driver's own, so its log and its hosts' share one).
    """
    # Longer than most functions here: the steps of one attempt in order, with Levanter's imports deferred
    # until the environment is set; each step that has a name of its own is a function below.
    if contract.placement(job.spec.resources).cpu_hosts and host is None:
        return _train_on_local_hosts(job, output, status, console, local_ray, default_validation)
    attempt = attempt or new_attempt_id()
    paths = run_paths(job, output, attempt)
    where = f"{job.namespace}/{job.name}"
    _prepare_environment(job, paths, quiet_levanter_bar=console)

    # Levanter, JAX and W&B load here, after the environment above is set.
    import jax
    import levanter.main.train_lm as train_lm
    import ray

    if host is not None:
        prepare_cpu_host(host)

    from speedrun_trainer.levanter_config import build_train_config
    from speedrun_trainer.levanter_fixes import elementwise_max_in_hyperball_updates, log_inside_gradients
    from speedrun_trainer.optimizers import serialised as serialised_optimizer
    from speedrun_trainer.step_tracker import SpeedrunTrackerConfig, registered_sink
    from speedrun_trainer.wandb_tracking import current_run_link, wandb_config, wandb_mode

    loaded = _custom_model(job, paths, console)
    info = compute_run_info(job.spec, loaded.counts if loaded is not None else None)
    run_id = run_id_for(job)
    mode = wandb_mode(job)
    logger.info("[%s] attempt %s of run %s: output %s, W&B %s", where, attempt, run_id, paths.output, mode)

    recorder = StepRecorder(paths.steps, attempt)
    monitor = _monitor(job, info.model_flops, info.peak_flops, recorder, status, console, jax.process_index)
    defaults = eval_sets.from_env(os.environ) if default_validation is None else default_validation
    config = build_train_config(
        job.spec,
        paths,
        run_id,
        trackers=[wandb_config(job, run_id, mode), SpeedrunTrackerConfig(sink=attempt)],
        step_sink=attempt,
        # In a Ray task (speedrun train --ray) this process is already connected: Levanter must not re-init.
        start_ray=not local_ray and not ray.is_initialized(),
        default_validation=defaults,
        host=host,
        model=loaded.config if loaded is not None else None,
    )
    log_inside_gradients()
    elementwise_max_in_hyperball_updates()
    write_config(job, paths)
    if local_ray:
        _start_local_ray(job)
    links: list[str | None] = []
    with registered_sink(attempt, _LinkCatcher(monitor, links, current_run_link)):
        _train(lambda: train_lm.main(config), monitor, status)

    if not monitor.primary():
        logger.info("[%s] host %d done; JAX process 0 writes the results", where, jax.process_index())
        if status is not None:
            status.close()
        return TrainResult(results_url=paths.results, run_info={})
    outcome = RunOutcome(
        history=read_history(paths.steps),
        model_config=marin_model_config(config.model, job.spec.dataset.resolved_tokenizer),
        optimizer_config=serialised_optimizer(config.optimizer),
        validation_sets=_validation_sets(job, defaults),
        num_devices=jax.device_count(),
        eval_dataset=_eval_set(job, defaults),
        completed_at=datetime.now(UTC),
        wandb_run_link=next((link for link in links if link), None),
        image=os.environ.get(IMAGE_ENV) or job.spec.image,
        model_counts=loaded.counts if loaded is not None else None,
        model_code=loaded.record(job.spec.model.code) if loaded is not None and job.spec.model.code else None,
    )
    return _publish(job, outcome, paths, monitor, status, console=console, wandb_offline=mode == "offline")


def _custom_model(job: SpeedrunJob, paths: RunPaths, console: bool) -> LoadedModel | None:
    """A custom model's code imported and counted (None for a Levanter family); raises CodeError."""
    code = job.spec.model.code
    if code is None:
        return None
    from speedrun_trainer.model_code import load_job_model

    where = f"{job.namespace}/{job.name}"
    loaded = load_job_model(
        code,
        seq_len=seq_len_of(job.spec),
        vocab_size=job.spec.dataset.resolved_vocab_size,
        failure_url=paths.failure,
        where=where,
    )
    if console:
        from speedrun_trainer.console import announce

        announce(
            "model code",
            f"{code.describe()}: {humanize(loaded.counts.parameters)} parameters, "
            f"{loaded.counts.flops_per_token:.3g} FLOPs per token, {loaded.digest[:19]}",
        )
    return loaded


def _train(run: Callable[[], object], monitor: RunMonitor, status: StatusReporter | None) -> None:
    """Run Levanter's training; whatever happens, the reporters stop and the step records are written out
    (the status reporter keeps going on success, for the final progress)."""
    try:
        run()
    except BaseException:
        if status is not None:
            status.close()
        raise
    finally:
        for reporter in monitor.reporters:
            if reporter is not status:
                reporter.close()
        monitor.recorder.close()


def run_paths(job: SpeedrunJob, output: str | None, attempt: str) -> RunPaths:
    return RunPaths(
        output=resolve_output(job, output),
        job=job.name,
        # Per attempt, so the W&B folder copied out at the end holds this attempt's run only.
        local_dir=Path(tempfile.gettempdir()) / "speedrun" / job.namespace / job.name / attempt,
    )


def _monitor(
    job: SpeedrunJob,
    model_flops: float,
    peak_flops: float,
    recorder: StepRecorder,
    status: StatusReporter | None,
    console: bool,
    process_index: Callable[[], int],
) -> RunMonitor:
    reporters: list[ProgressReporter] = []
    if status is not None:
        reporters.append(status)
    if console:
        from speedrun_trainer.console import ConsoleProgress

        reporters.append(ConsoleProgress(job.name, job.spec.train.steps))
    steps = job.spec.train.steps
    estimator = ProgressEstimator(steps, model_flops / steps, peak_flops)
    return RunMonitor(recorder, estimator, reporters, primary=lambda: process_index() == 0)


def _publish(
    job: SpeedrunJob,
    outcome: RunOutcome,
    paths: RunPaths,
    monitor: RunMonitor,
    status: StatusReporter | None,
    *,
    console: bool,
    wandb_offline: bool,
) -> TrainResult:
    """The primary host's last act: the results file and config, the W&B run, the final progress."""
    from speedrun_trainer.wandb_tracking import keep_offline_runs

    where = f"{job.namespace}/{job.name}"
    run_info = write_submission(job, outcome, paths)
    logger.info("[%s] results written to %s", where, paths.results)
    if wandb_offline:
        keep_offline_runs(paths.wandb_local_dir, paths.wandb, where)
    if status is not None:
        status.finish(monitor.estimator.progress())
    if console:
        from speedrun_trainer.console import print_results

        print_results(run_info, paths.results)
    return TrainResult(results_url=paths.results, run_info=run_info)


def _train_on_local_hosts(
    job: SpeedrunJob,
    output: str | None,
    status: StatusReporter | None,
    console: bool,
    local_ray: bool,
    default_validation: ValidationSets | None,
) -> TrainResult:
    """Each CPU host's process in a Ray task of this machine, as a RayJob's driver places them on pods."""
    import ray

    from speedrun_trainer.ray_dispatch import train_on_workers

    if local_ray or not ray.is_initialized():
        _start_local_ray(job)
    hosts = contract.placement(job.spec.resources).hosts
    if console:
        from speedrun_trainer.console import announce

        announce("training", f"on {hosts} CPU hosts, one JAX process each (their output is in the log)")
    try:
        # The hosts' tasks report progress themselves (host 0 does): this process only waits on them.
        result = train_on_workers(
            job,
            output,
            status.job if status is not None else None,
            one_machine=True,
            default_validation=default_validation,
        )
    finally:
        if status is not None:
            status.close()
    if console:
        from speedrun_trainer.console import print_results

        print_results(result.run_info, result.results_url)
    return result


def _start_local_ray(job: SpeedrunJob) -> None:
    """A Ray of this process's own, whatever RAY_ADDRESS says; without the dashboard, which costs seconds of
    start-up and a port. The namespace is the one Levanter uses for its actors."""
    import ray

    ray.init(address="local", namespace="levanter", include_dashboard=False, resources=local_resources(job))


def local_resources(job: SpeedrunJob) -> dict[str, float]:
    """What this machine's Ray advertises for ``job``: the worker resource once per CPU host, so each host's
    task finds a place beside the others."""
    where = contract.placement(job.spec.resources)
    return {contract.WORKER_RESOURCE: float(where.hosts)} if where.cpu_hosts else {}


class _LinkCatcher:
    """Passes records on, and notes the W&B run link while the run is live (it is gone once training ends)."""

    def __init__(self, monitor: RunMonitor, links: list[str | None], link: Callable[[], str | None]) -> None:
        self._monitor = monitor
        self._links = links
        self._link = link

    def on_step(self, record: StepRecord) -> None:
        if not self._links:
            self._links.append(self._link())
        self._monitor.on_step(record)

    def on_eval(self, record: EvalRecord) -> None:
        self._monitor.on_eval(record)

    def before_checkpoint(self, record: StepRecord) -> None:
        self._monitor.before_checkpoint(record)


def marin_model_config(model: Any, tokenizer: str) -> dict[str, Any]:
    """``dataclasses.asdict`` of the LlamaConfig with enums by name, as Marin records it; the tokenizer by its
    name rather than this machine's path to it."""
    raw = dataclasses.asdict(model)
    for key in ("tokenizer", "reference_checkpoint"):
        if key in raw:  # a custom model's config may have neither
            raw[key] = tokenizer
    return {key: _plain(value) for key, value in raw.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _eval_set(job: SpeedrunJob, defaults: ValidationSets) -> str | None:
    from speedrun_trainer.dataset import eval_set_name

    return eval_set_name(job.spec.dataset, defaults)


def _validation_sets(job: SpeedrunJob, defaults: ValidationSets) -> ValidationSets:
    from speedrun_trainer.dataset import validation_sets

    return validation_sets(job.spec.dataset, defaults)


def _prepare_environment(job: SpeedrunJob, paths: RunPaths, *, quiet_levanter_bar: bool) -> None:
    paths.local_dir.mkdir(parents=True, exist_ok=True)
    os.environ["WANDB_DIR"] = str(paths.wandb_local_dir)
    paths.wandb_local_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    if job.spec.dataset.resolved_tokenizer == BUNDLED:
        # Nothing to download: keep Hugging Face libraries from trying the network.
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            os.environ.setdefault(name, "1")
    if quiet_levanter_bar:
        # Our rich bar replaces Levanter's tqdm one.
        os.environ["TQDM_DISABLE"] = "1"
