"""``speedrun operator``: run the kopf operator with this project's handlers."""

from __future__ import annotations

import click


@click.command("operator")
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Watch only these namespaces.")
@click.option("--standalone", is_flag=True, help="No peering: for one replica or local development.")
@click.option("--peering", default="speedrun-operator", show_default=True, help="kopf peering name (HA).")
@click.option(
    "--liveness", default="http://0.0.0.0:8081/healthz", show_default=True, help="Liveness endpoint."
)
@click.option("--verbose", is_flag=True, help="Debug logging.")
def operator(
    namespaces: tuple[str, ...], standalone: bool, peering: str, liveness: str, verbose: bool
) -> None:
    """Reconcile SpeedrunJobs into KubeRay RayJobs (needs KubeRay's CRDs in the cluster)."""
    import kopf

    import speedrun_operator.handlers  # noqa: F401  (registers the handlers)

    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.PLAIN)
    kopf.run(
        standalone=standalone,
        peering_name=None if standalone else peering,
        namespaces=list(namespaces),
        clusterwide=not namespaces,
        liveness_endpoint=liveness,
    )
