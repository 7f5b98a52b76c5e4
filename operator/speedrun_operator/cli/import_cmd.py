"""``speedrun import RESULTS_FILE|FOLDER|URL``: the SpeedrunJob that reproduces a recorded run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from speedrun_operator import accelerators, storage
from speedrun_operator.api import ResourcesSpec, SpeedrunJob
from speedrun_operator.cli.errors import EXIT_INVALID
from speedrun_operator.contract import RESULTS_FILE
from speedrun_operator.submissions.import_ladder import as_ladder
from speedrun_operator.submissions.importer import Imported, ImportFailed, import_run, job_name, run_infos

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")
_GITHUB_BLOB = re.compile(r"^https://github\.com/([^/]+/[^/]+)/blob/(.+)$")
_COUNT = re.compile(r"^(?:(\d+)x)?(.+)$")


@click.command(name="import")
@click.argument("source")
@click.option(
    "-o", "--out", type=click.Path(path_type=Path, dir_okay=False), help="Write here, not to stdout."
)
@click.option(
    "--hardware",
    help="Train on this instead of the recorded hardware: cpu, a GPU type with a count (8xH100), "
    "a TPU slice (v5p-32) or several (2xv4-16).",
)
@click.option(
    "--peak-flops-per-chip", type=float, help="Peak FLOP/s of one chip (needed with --hardware cpu)."
)
@click.option("--output", help="spec.output of the imported job: where its results go.")
@click.option(
    "--name",
    help="Name of the imported job or ladder. Default: from the results' folder names; "
    "give another to rerun beside the original without resuming from its checkpoints.",
)
@click.option("--partial", is_flag=True, help="Write what the results allow even where they are not enough.")
def import_command(
    source: str,
    out: Path | None,
    hardware: str | None,
    peak_flops_per_chip: float | None,
    output: str | None,
    name: str | None,
    partial: bool,
) -> None:
    """Write the SpeedrunJob that reproduces the run in SOURCE: a speedrun_results.json, its URL, or a
    folder holding one. A folder whose runs are in its subfolders (130m/, 300m/, ...) becomes one
    SpeedrunLadder; other folders of several runs, one SpeedrunJob per run in a multi-document YAML.

    Where the results do not hold enough (a run with its own model code, a field the pinned Levanter lacks)
    each missing key is named and nothing is written, unless --partial. Exits 2 on bad input."""
    try:
        resources = _resources(hardware, peak_flops_per_chip)
        sources = _sources(source)
        if name is not None and len(sources) == 1:
            sources = [(sources[0][0], job_name([name]))]
        runs = [(where, _import(where, job)) for where, job in sources]
    except ImportFailed as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_INVALID) from None
    missing = [f"{where}: {problem}" for where, run in runs for problem in run.missing]
    if missing and not partial:
        missing[-1] += "; nothing written (--partial writes what the results do say)"
    for line in missing:
        click.echo(line, err=True)
    if missing and not partial:
        raise SystemExit(EXIT_INVALID)
    documents = [_overridden(run.manifest(), resources, output) for _, run in runs]
    ladder = _ladder(source, runs, resources, output, name)
    text = yaml.safe_dump_all([ladder] if ladder else documents, sort_keys=False)
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text)
    what = f"SpeedrunLadder {ladder['metadata']['name']} of " if ladder else ""
    click.echo(f"wrote {out}: {what}{', '.join(run.job.name for _, run in runs)}", err=True)


def _sources(source: str) -> list[tuple[str, str]]:
    """Each results file to import, and the job name it gets (from its folder names)."""
    if _SCHEME.match(source) and not source.startswith("file://"):
        url = raw_file_url(
            source if source.split("?")[0].endswith(".json") else f"{source.rstrip('/')}/{RESULTS_FILE}"
        )
        parts = [part for part in url.split("?")[0].split("/")[3:] if part]
        return [(url, job_name(_run_parts(parts[:-1])))]
    path = Path(source.removeprefix("file://"))
    if path.is_dir():
        found = sorted(path.rglob(RESULTS_FILE))
        if not found:
            raise ImportFailed(f"{path}: no {RESULTS_FILE} in this folder")
        names = [
            [path.resolve().name, *file.parent.relative_to(path).parts]
            if file.parent != path
            else _run_parts(list(path.resolve().parts))
            for file in found
        ]
        return [(str(file), job_name(parts)) for file, parts in zip(found, names, strict=True)]
    return [(str(path), job_name(_run_parts(list(path.resolve().parent.parts))))]


def _ladder(
    source: str,
    runs: list[tuple[str, Imported]],
    resources: dict[str, Any] | None,
    output: str | None,
    name: str | None,
) -> dict[str, Any] | None:
    """A folder whose runs are its subfolders' (130m/, 300m/, ...) is a ladder: one SpeedrunLadder, when
    they make one (three rungs at least, one author)."""
    folder = Path(source)
    if not folder.is_dir() or any(Path(where).parent.parent != folder for where, _ in runs):
        return None
    rungs = [(Path(where).parent.name, _with_overrides(run, resources, output)) for where, run in runs]
    return as_ladder(job_name([name or folder.resolve().name]), rungs, source)


def _with_overrides(run: Imported, resources: dict[str, Any] | None, output: str | None) -> Imported:
    manifest = _overridden(run.manifest(), resources, output)
    return Imported(SpeedrunJob.model_validate(manifest), run.missing)


def raw_file_url(url: str) -> str:
    """A GitHub page of a file (github.com/OWNER/REPO/blob/REF/PATH) as the file itself."""
    match = _GITHUB_BLOB.match(url)
    return f"https://raw.githubusercontent.com/{match[1]}/{match[2]}" if match else url


def _run_parts(folders: list[str]) -> list[str]:
    """A rung's folder (130m, 1_2b) is named with its ladder's: muon_llama_scaling/130m."""
    if len(folders) >= 2 and folders[-1][:1].isdigit():
        return folders[-2:]
    return folders[-1:]


def _import(where: str, name: str) -> Imported:
    try:
        text = storage.read_text(where)
    except (OSError, ValueError) as exc:
        raise ImportFailed(f"{where}: cannot read: {exc}") from None
    infos = run_infos(text, where)
    if len(infos) > 1:
        raise ImportFailed(f"{where}: runs: {len(infos)} runs in one file, expected one")
    try:
        return import_run(infos[0], name, where)
    except ImportFailed as exc:
        raise ImportFailed(f"{where}: {exc}") from None


def _resources(hardware: str | None, peak: float | None) -> dict[str, Any] | None:
    """--hardware as the resources section: cpu, [N x]GPU type, or [M x]TPU slice."""
    if hardware is None:
        return None if peak is None else {"peak_flops_per_chip": peak}
    match = _COUNT.match(hardware.strip())
    assert match is not None
    count, kind = int(match.group(1) or 1), match.group(2)
    tables = accelerators.tables()
    section: dict[str, Any]
    if kind == "cpu":
        section = {"cpu": {}}
    elif kind in tables.gpus:
        section = {"gpu": {"type": kind, "count": count}}
    elif kind in tables.tpu_slices:
        section = {"tpu": {"type": kind, "slices": count}}
    else:
        raise ImportFailed(
            f"--hardware: {hardware!r} is no accelerator known here; give cpu, NxGPU "
            f"({', '.join(sorted(tables.gpus))}) or a TPU slice such as v5p-32"
        )
    if peak is not None:
        section["peak_flops_per_chip"] = peak
    try:
        ResourcesSpec.model_validate(section)
    except ValidationError as exc:
        raise ImportFailed(f"--hardware {hardware}: {exc.errors()[0]['msg']}") from None
    return section


def _overridden(
    manifest: dict[str, Any], resources: dict[str, Any] | None, output: str | None
) -> dict[str, Any]:
    spec = manifest["spec"]
    if resources is not None and set(resources) == {"peak_flops_per_chip"}:
        spec["resources"] = {**spec["resources"], "peakFlopsPerChip": resources["peak_flops_per_chip"]}
    elif resources is not None:
        spec["resources"] = ResourcesSpec.model_validate(resources).model_dump(
            mode="json", exclude_unset=True
        )
    if output is not None:
        spec["output"] = output
    return manifest
