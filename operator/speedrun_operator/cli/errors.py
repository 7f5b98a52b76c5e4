"""How the CLI reports bad input: one line per error, exit code 2, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from speedrun_operator.manifests import ManifestError

EXIT_INVALID = 2


@contextmanager
def exit_on_manifest_error() -> Iterator[None]:
    try:
        yield
    except ManifestError as exc:
        for error in exc.errors:
            click.echo(f"{exc.where}: {error}", err=True)
        raise SystemExit(EXIT_INVALID) from None
