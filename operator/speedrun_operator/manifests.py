"""Reading SpeedrunJob files: YAML documents in, validated jobs or located errors out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from speedrun_operator.api import GROUP, KIND, FieldError, InvalidSpeedrunJob, SpeedrunJob, parse_job
from speedrun_operator.api.ladder import LADDER_KIND, SpeedrunLadder
from speedrun_operator.ladder.rungs import Rung, parse_ladder


@dataclass(frozen=True)
class Document:
    path: Path
    index: int
    data: Any

    @property
    def where(self) -> str:
        return f"{self.path}" if self.index == 0 else f"{self.path}[document {self.index + 1}]"


class ManifestError(ValueError):
    """A file that is not valid YAML, or holds no SpeedrunJob."""

    def __init__(self, where: str, errors: list[FieldError]) -> None:
        self.where = where
        self.errors = errors
        super().__init__("\n".join(f"{where}: {error}" for error in errors))


def iter_documents(path: Path) -> Iterator[Document]:
    try:
        text = path.read_text()
    except OSError as exc:
        error = FieldError("(file)", f"cannot read: {exc.strerror}", has_value=False)
        raise ManifestError(str(path), [error]) from None
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(
            where, [FieldError("(yaml)", f"not valid YAML: {problem}", has_value=False)]
        ) from None
    for index, data in enumerate(documents):
        yield Document(path, index, data)


def looks_like_speedrun_job(data: Any) -> bool:
    """Documents validated as SpeedrunJobs: that kind, our API group, or no kind at all (a typo'd job).

    Other kinds (a kustomization, a Secret) may share a file and are left alone.
    """
    if not isinstance(data, dict):
        return True
    if looks_like_ladder(data):
        return False
    api_version = str(data.get("apiVersion", ""))
    return data.get("kind") in (KIND, None) or api_version.startswith(GROUP)


def looks_like_ladder(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == LADDER_KIND


def load_jobs(path: Path) -> list[SpeedrunJob]:
    """Every SpeedrunJob in a file; raises ManifestError naming the file and each bad field."""
    jobs = []
    for document in iter_documents(path):
        if not looks_like_speedrun_job(document.data):
            continue
        try:
            jobs.append(parse_job(document.data))
        except InvalidSpeedrunJob as exc:
            raise ManifestError(document.where, exc.errors) from None
    if not jobs:
        raise ManifestError(str(path), [FieldError("kind", f"no {KIND} in this file", has_value=False)])
    return jobs


def load_job(path: Path) -> SpeedrunJob:
    jobs = load_jobs(path)
    if len(jobs) > 1:
        raise ManifestError(
            str(path),
            [FieldError("(file)", f"holds {len(jobs)} SpeedrunJobs; expected one", has_value=False)],
        )
    return jobs[0]


def load_ladder(path: Path, default_output: str | None = None) -> tuple[SpeedrunLadder, list[Rung]]:
    """The one SpeedrunLadder in a file and its rungs' SpeedrunJobs; raises ManifestError naming each bad
    field."""
    documents = [document for document in iter_documents(path) if looks_like_ladder(document.data)]
    if len(documents) != 1:
        found = f"holds {len(documents)} SpeedrunLadders; expected one"
        raise ManifestError(str(path), [FieldError("(file)", found, has_value=False)])
    try:
        return parse_ladder(documents[0].data, default_output)
    except InvalidSpeedrunJob as exc:
        raise ManifestError(documents[0].where, exc.errors) from None


def holds_ladder(path: Path) -> bool:
    """The file holds a SpeedrunLadder (``info``, ``run`` and ``validate`` then treat it as one)."""
    try:
        return any(looks_like_ladder(document.data) for document in iter_documents(path))
    except ManifestError:
        return False
