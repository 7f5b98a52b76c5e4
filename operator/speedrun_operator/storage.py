"""Object storage through fsspec for the operator and the trainer: gs:// (gcsfs), s3://, file://, paths."""

from __future__ import annotations

import os
import uuid

import fsspec
from fsspec.core import url_to_fs


def configure_process() -> None:
    """Settings of the storage libraries for this process; call at start-up, before the first gs:// access.

    gcsfs otherwise probes each new bucket's type over gRPC first; against anything but real GCS (an emulator,
    a proxy) that probe waits 60 s before falling back. gcsfs reads the setting when it is first imported.
    """
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


def write_text_atomic(url: str, text: str) -> None:
    """Write ``text`` so that readers see the old file or the new one, never half of one.

    Object stores (gs://, s3://) publish an object only when its upload completes, so one put is atomic there.
    On a filesystem the text goes to a temporary sibling that is then renamed over the target.
    """
    fs, path = url_to_fs(url)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    if _is_local(fs):
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"
        with fs.open(temporary, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    else:
        fs.pipe_file(path, text.encode())


def read_text(url: str) -> str:
    with fsspec.open(url, "r") as handle:
        text: str = handle.read()
    return text


def list_names(url: str) -> list[str]:
    """Names of the files directly under ``url`` (none when it does not exist), sorted."""
    fs, path = url_to_fs(url)
    if not fs.exists(path):
        return []
    return sorted(
        entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False) if fs.isfile(entry)
    )


def upload_dir(local_dir: str, url: str) -> None:
    """Copy a local directory tree to ``url`` (used for the W&B offline run folder)."""
    fs, path = url_to_fs(url)
    fs.makedirs(path, exist_ok=True)
    fs.put(local_dir.rstrip("/") + "/", path, recursive=True)


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    return "file" in protocol or "local" in protocol
