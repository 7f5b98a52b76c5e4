"""``speedrun crd``: print, write or check the CRD generated from the models."""

from __future__ import annotations

from pathlib import Path

import click

from speedrun_operator import crd as crd_module


@click.command()
@click.option("--write", is_flag=True, help="Write crds/ and the chart's copy under --root.")
@click.option("--check", is_flag=True, help="Exit 1 when the files differ from the models.")
@click.option(
    "--root", type=click.Path(path_type=Path, file_okay=False), default=Path("."), show_default=True
)
def crd(write: bool, check: bool, root: Path) -> None:
    """Print the SpeedrunJob and SpeedrunLadder CRDs generated from the pydantic models."""
    if write:
        for path in crd_module.write_crd(root):
            click.echo(f"wrote {path}")
    elif check:
        drifted = crd_module.drifted_files(root)
        for path in drifted:
            click.echo(f"{path} differs from the models; run `make crd`", err=True)
        raise SystemExit(1 if drifted else 0)
    else:
        click.echo(crd_module.render_crd() + "---\n" + crd_module.render_ladder_crd(), nl=False)
