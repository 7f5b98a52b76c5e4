"""What a person sees of ``speedrun run``: the run-info line, each stage as it starts (starting Ray,
tokenizing, compiling, training with a bar, evaluating, writing results), the warnings that matter and the
results table.

Everything else the process prints (Levanter, Ray and its workers, JAX, W&B, Python warnings) goes to the
run's log file, whose path is printed: file descriptors 1 and 2 point there for the whole session, so output
from C libraries and child processes lands there too, and the console writes to a copy of the terminal's
descriptor.
``--verbose`` copies the log to the terminal as it is written. Without a terminal the console prints plain
lines, no control characters: one per stage and one every few percent of training.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from speedrun_operator.api import Progress as JobProgress
from speedrun_operator.api import SpeedrunJob
from speedrun_operator.runinfo import compute_run_info, total_tokens

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_NAME = "speedrun-run.log"
# Without a terminal, one progress line per this fraction of the steps.
PLAIN_PROGRESS_EVERY = 0.05
# Our own packages: their warnings matter to the person running; other libraries' go to the log only.
OURS = ("speedrun_trainer", "speedrun_operator")

_session: RunConsole | None = None


def log_path_for(job: SpeedrunJob, output: str) -> Path:
    """The log file: in the run's output folder when that is on this machine, else in this machine's scratch
    space for the run (an object-store output cannot be appended to as the run goes)."""
    if "://" not in output or output.startswith("file://"):
        return Path(output.removeprefix("file://")) / job.name / LOG_NAME
    return Path(os.environ.get("TMPDIR", "/tmp")) / "speedrun" / job.namespace / job.name / LOG_NAME


class RunConsole:
    """The person's view of one run; the stage hooks are called from the trainer and from log records."""

    def __init__(self, console: Console, job: SpeedrunJob, log_path: Path, *, verbose: bool) -> None:
        self.console = console
        self.job = job
        self.log_path = log_path
        self.live = console.is_terminal and not verbose
        self.last_step = 0
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._stages: list[str] = []

    # --- lines ---------------------------------------------------------------------------------------------

    def stage(self, name: str, detail: str = "", *, again: bool = False) -> None:
        """A stage as it starts, once (``again``: each time, as evaluations are)."""
        with self._lock:
            if name in self._stages and not again:
                return
            self._stages.append(name)
        self.console.print(f"[bold cyan]▸ {name}[/]" + (f" {detail}" if detail else ""), highlight=False)

    def line(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def warn(self, text: str) -> None:
        self.console.print(f"[bold yellow]warning:[/] {text}", highlight=False)

    def seen(self, name: str) -> bool:
        return name in self._stages

    # --- stages the trainer's log records announce -----------------------------------------------------

    def tokenizing(self, cache: Path) -> None:
        self.stage("tokenizing", f"the dataset into Levanter's cache ({cache.parent.parent})")
        threading.Thread(target=self._count_when_built, args=(cache,), daemon=True).start()

    def _count_when_built(self, cache: Path) -> None:
        import json

        ledger = cache / "shard_ledger.json"
        while not self.closed.is_set():
            try:
                data = json.loads(ledger.read_text())
            except (OSError, ValueError):
                data = {}
            if data.get("is_finished"):
                self.line(f"  tokenized {cache.name}: {data.get('total_num_rows', 0):,} documents")
                return
            self.closed.wait(0.5)

    def compiling(self) -> None:
        if not self.seen("tokenizing"):
            self.stage("tokenizing", "done before: the dataset's cache is reused")
        self.stage("compiling", "the training step with JAX (the first step waits for it)")

    def evaluating(self, step: int) -> None:
        self.stage("evaluating", f"at step {step}", again=True)

    def evaluated(self, message: str) -> None:
        if not self.seen("training"):  # Levanter evaluates the untrained model before the first step
            self.stage("evaluating", "the untrained model", again=True)
        self.line(f"  {message}")


class _Stages(logging.Handler):
    """Levanter's own records that mark a stage (by logger and message), turned into console stages."""

    def __init__(self, session: RunConsole) -> None:
        super().__init__(logging.INFO)
        self.session = session

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            return
        if record.name == "levanter.store.cache" and message.startswith("Cache not found at "):
            self.session.tokenizing(Path(message.removeprefix("Cache not found at ").split(". Building")[0]))
        elif record.name == "levanter.main.train_lm" and ("from scratch" in message or "Resum" in message):
            self.session.compiling()
        elif record.name == "levanter.eval" and message.startswith("eval loss"):
            self.session.evaluated(message)


class _Warnings(logging.Handler):
    """Warnings and errors of our own packages: they matter to the person running, so they are shown."""

    def __init__(self, session: RunConsole) -> None:
        super().__init__(logging.WARNING)
        self.session = session

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(OURS):
            self.session.warn(record.getMessage())


class ConsoleProgress:
    """The training bar (a terminal) or a line every few percent (no terminal); also marks the training,
    evaluating and writing-results stages, which only the steps themselves tell."""

    def __init__(self, job: str, total_steps: int, console: Console | None = None) -> None:
        self.session = _session
        self.total = total_steps
        self.console = console or (self.session.console if self.session else Console())
        spec = self.session.job.spec.train if self.session else None
        self.steps_per_eval = spec.steps_per_eval if spec is not None else None
        self.live = self.session.live if self.session else self.console.is_terminal
        self._next_line = 0.0
        self._step = 0
        self._evaluated_at = 0
        self._bar = Progress(
            TextColumn(f"[bold]{job}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=self.console,
            # The libraries' output goes to the log file, not through the bar.
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._bar.add_task("train", total=total_steps, detail="compiling…")
        self._started = False

    def report_progress(self, progress: JobProgress) -> None:
        if self.session is not None:
            if not self.session.seen("compiling"):
                self.session.compiling()
            self.session.stage("training", f"{self.total:,} steps")
            self.session.last_step = progress.step
        if not self._started and self.live:
            self._bar.start()
        self._started = True
        detail = []
        if progress.loss is not None:
            detail.append(f"loss {progress.loss:.3f}")
        if progress.tokens_per_second is not None:
            detail.append(f"{progress.tokens_per_second:,.0f} tok/s")
        self._step = progress.step
        if self.live:
            self._bar.update(self._task, completed=progress.step, detail="  ".join(detail))
        elif progress.step / self.total >= self._next_line or progress.step == self.total:
            percent = 100 * progress.step // self.total
            self.console.print(
                f"  training {progress.step}/{self.total} ({percent}%)  {'  '.join(detail)}",
                highlight=False,
                markup=False,
            )
            self._next_line = progress.step / self.total + PLAIN_PROGRESS_EVERY
        # Levanter evaluates every steps_per_eval steps and after the last; progress may skip the exact step.
        every = self.steps_per_eval
        if self.session is not None and every:
            due = self.total if progress.step == self.total else progress.step - progress.step % every
            if due > self._evaluated_at:
                self._evaluated_at = due
                self.session.evaluating(due)

    def close(self) -> None:
        if self._started and self.live:
            self._bar.stop()
        if self.session is not None and self._step >= self.total:
            self.session.stage("writing results", "speedrun_results.json, the job's YAML beside it")


def announce(name: str, detail: str) -> None:
    """A stage of the current ``speedrun run`` that its hooks cannot see (its hosts train in Ray tasks)."""
    if _session is not None:
        _session.stage(name, detail)


def print_results(info: dict[str, Any], results_url: str, console: Console | None = None) -> None:
    table = Table(title=f"{info['description']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    bpb = info["eval_bpb"]
    rows = [
        ("eval set", str(info["eval_dataset"])),
        ("eval bpb", f"{bpb:.4f}" if bpb is not None else "n/a"),
        ("steps", f"{info['steps_completed']:,} in {info['attempts']} attempt(s)"),
        ("training time", f"{info['training_time']:.1f} s (sum of step durations)"),
        ("tokens", f"{info['total_tokens']:,}"),
        ("parameters", f"{info['model_size']:,}"),
        ("model FLOPs", f"{info['model_flops']:.4e}"),
        ("hardware FLOPs", f"{info['training_hardware_flops']:.4e}"),
        ("W&B", info["wandb_run_link"] or "offline"),
        ("results", results_url),
    ]
    for key, value in rows:
        table.add_row(key, value)
    (console or (_session.console if _session else Console())).print(table)


def run_info_line(job: SpeedrunJob, output: str) -> str:
    train = job.spec.train
    if job.spec.model.is_custom:
        # Its counts are its code's: the "model code" stage shows them once the code is imported.
        return (
            f"{job.name}: model {job.spec.model.describe()}, {train.steps:,} steps, "
            f"{total_tokens(job.spec):,} tokens, on {job.spec.resources.describe()}; "
            f"output {output}/{job.name}"
        )
    info = compute_run_info(job.spec)
    return (
        f"{job.name}: {info.parameters_display} parameters, {train.steps:,} steps, "
        f"{info.total_tokens:,} tokens, {info.model_flops:.2e} model FLOPs, "
        f"on {job.spec.resources.describe()}; output {output}/{job.name}"
    )


def _point_descriptors_at(log: IO[str], *, verbose: bool, terminal: IO[str]) -> None:
    """Points file descriptors 1 and 2 at the log (through a copying thread with --verbose). They stay so
    until the process exits: atexit handlers (W&B's, Levanter's loggers') still write after the run."""
    sys.stdout.flush()
    sys.stderr.flush()
    if verbose:
        read_end, write_end = os.pipe()

        def copy() -> None:
            with os.fdopen(read_end, "rb", buffering=0) as source:
                while chunk := source.read(65536):
                    text = chunk.decode(errors="replace")
                    log.write(text)
                    log.flush()
                    terminal.write(text)
                    terminal.flush()

        threading.Thread(target=copy, daemon=True).start()
        target = write_end
    else:
        target = log.fileno()
    os.dup2(target, 1)
    os.dup2(target, 2)


def _configure_logging(session: RunConsole) -> None:
    """Every record to standard error, which is the log file (and with --verbose the terminal too); our
    warnings and Levanter's stage records to the console as well. Ray's driver-side records come here too
    (ray.init(configure_logging=False))."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    to_file = logging.StreamHandler(sys.stderr)
    to_file.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(to_file)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logging.getLogger("levanter").addHandler(_Stages(session))
    for name in OURS:
        logging.getLogger(name).addHandler(_Warnings(session))


def start_ray(session: RunConsole) -> None:
    """This machine's own Ray, whatever RAY_ADDRESS says, without the dashboard (seconds of start-up and a
    port), in the namespace Levanter uses for its actors. Its workers' output reaches this process
    (log_to_driver), whose descriptors point at the log file; its records go through our logging."""
    import ray

    from speedrun_trainer.runner import local_resources

    session.stage("starting Ray", "(a local instance for Levanter's tokenizer and cache writers)")
    ray.init(
        address="local",
        namespace="levanter",
        include_dashboard=False,
        log_to_driver=True,
        logging_level=logging.INFO,
        configure_logging=False,
        resources=local_resources(session.job),
    )


def failure_cause(exc: BaseException) -> str:
    """The innermost cause of a failure, as one line: a Ray task's own exception, a chained cause."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None)
        if isinstance(inner, BaseException):
            exc = inner
        elif exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            break
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def console_session(job: SpeedrunJob, output: str, *, verbose: bool = False) -> Iterator[RunConsole]:
    """The console of one ``speedrun run``: sets up the log file and logging, prints the run-info line and the
    log's path, and on a failure prints its cause and the log's path and exits 1."""
    global _session
    log_path = log_path_for(job, output)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")
    # soft_wrap: long lines (paths) wrap in the terminal, not as rich's hard breaks.
    console = Console(file=terminal, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(file=terminal, highlight=False, soft_wrap=True, width=120, no_color=True)
    log = log_path.open("a", buffering=1, encoding="utf-8")
    log.write(f"\n===== speedrun run {job.namespace}/{job.name} at {datetime.now(UTC).isoformat()}\n")
    session = RunConsole(console, job, log_path, verbose=verbose)
    session.line(run_info_line(job, output))
    session.line(f"log: {log_path}")
    if job.spec.resources.cpu is None:
        asks = job.spec.resources.describe()
        session.warn(f"the job asks for {asks}; training on the devices JAX sees here")
    _session = session
    _point_descriptors_at(log, verbose=verbose, terminal=terminal)
    _configure_logging(session)
    try:
        yield session
    except Exception as exc:
        traceback.print_exc()  # to standard error: the log file
        session.console.print(f"[bold red]failed:[/] {failure_cause(exc)}", highlight=False)
        session.line(f"log: {log_path}")
        raise SystemExit(1) from None
    finally:
        _shutdown_ray()
        session.closed.set()
        _session = None
        terminal.flush()


def _shutdown_ray() -> None:
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
