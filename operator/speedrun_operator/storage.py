"""Object storage through fsspec: gs:// (gcsfs), s3://, file:// and plain paths, with one set of quirks."""

from __future__ import annotations

import os

import fsspec

# gcsfs otherwise probes each new bucket's type over gRPC first; emulators and some networks cannot answer
# and every first access then stalls for a minute before falling back to the plain HTTP client.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

RESULTS_FILE = "speedrun_results.json"
CONFIG_FILE = "speedrun_job.yaml"
"""The SpeedrunJob YAML the trainer writes beside its results: together they make a leaderboard folder."""


def join(prefix: str, *parts: str) -> str:
    return "/".join([prefix.rstrip("/"), *(part.strip("/") for part in parts)])


def results_url(output_prefix: str, job_name: str) -> str:
    return join(output_prefix, job_name, RESULTS_FILE)


def read_text(url: str) -> str:
    with fsspec.open(url, "r") as handle:
        text: str = handle.read()
    return text


def write_text_atomic(url: str, text: str) -> None:
    """Write to a temporary name, then move into place: a reader never sees half a file."""
    fs, path = fsspec.core.url_to_fs(url)
    temporary = f"{path}.tmp-{os.getpid()}"
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(temporary, "w") as handle:
        handle.write(text)
    fs.mv(temporary, path)
