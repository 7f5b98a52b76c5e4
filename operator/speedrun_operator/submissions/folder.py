"""A submission folder on this machine: ``speedrun_results.json`` beside the SpeedrunJob it came from, or, in
a Marin-style folder (a training script beside it, no SpeedrunJob), the results file checked against the model
config, train config and resources it records itself."""

from __future__ import annotations

from pathlib import Path

from speedrun_operator.contract import CONFIG_FILE
from speedrun_operator.manifests import ManifestError, load_job
from speedrun_operator.submissions.consistency import Problem, check_results, run_infos
from speedrun_operator.submissions.recorded import check_recorded

_CONFIG_SUFFIXES = (".yaml", ".yml")


def config_beside(results: Path) -> Path | None:
    """``speedrun_job.yaml`` next to the results, else the folder's only YAML file, else None."""
    preferred = results.with_name(CONFIG_FILE)
    if preferred.is_file():
        return preferred
    candidates = [p for p in results.parent.iterdir() if p.suffix in _CONFIG_SUFFIXES and p.is_file()]
    return candidates[0] if len(candidates) == 1 else None


def results_problems(results: Path) -> list[str]:
    """One line per problem with a results file, each starting with its path."""
    try:
        text = results.read_text()
    except OSError as exc:
        return [f"{results}: cannot read: {exc.strerror}"]
    config = config_beside(results)
    if config is None:
        return [f"{results}: {problem}" for problem in check_on_its_own(text)]
    try:
        job = load_job(config)
    except ManifestError:
        return [
            f"{results}: cannot be checked: {config} is not a valid SpeedrunJob (validate it for details)"
        ]
    return [f"{results}: {problem}" for problem in check_results(text, job)]


def check_on_its_own(text: str) -> list[Problem]:
    """Problems of a results document with no SpeedrunJob: each run against the configs it records."""
    infos, problems = run_infos(text)
    for index, info in enumerate(infos):
        problems.extend(check_recorded(info, prefix=f"runs[{index}].run_info."))
    return problems
