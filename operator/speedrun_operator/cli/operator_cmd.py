"""``speedrun operator``: run the kopf operator with this project's handlers."""

from __future__ import annotations

import click


@click.command("operator")
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Watch only these namespaces.")
@click.option("--standalone", is_flag=True, help="No peering: for one replica or local development.")
@click.option("--peering", default="speedrun-operator", show_default=True, help="kopf peering name (HA).")
@click.option(
    "--priority",
    type=int,
    default=None,
    help="Peering priority; the live replica with the highest acts. Default: random, so replicas differ.",
)
@click.option(
    "--liveness", default="http://0.0.0.0:8081/healthz", show_default=True, help="Liveness endpoint."
)
@click.option("--webhook-port", type=int, help="Serve the validating admission webhook on this port.")
@click.option("--verbose", is_flag=True, help="Debug logging.")
def operator(
    namespaces: tuple[str, ...],
    standalone: bool,
    peering: str,
    priority: int | None,
    liveness: str,
    webhook_port: int | None,
    verbose: bool,
) -> None:
    """Reconcile SpeedrunJobs into KubeRay RayJobs (needs KubeRay's CRDs in the cluster)."""
    import dataclasses
    import random
    import sys

    # kopf imports the official Kubernetes client whenever it is installed, only to recognise the client's
    # objects if a handler hands it one; ours never do, and the package is 45 MiB of the operator's memory.
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]
    import kopf

    import speedrun_operator.handlers  # registers the handlers
    from speedrun_operator import allocator
    from speedrun_operator.config import OperatorConfig

    allocator.limit_arenas()  # before kopf starts the handler threads

    config = OperatorConfig.from_env()
    if webhook_port is not None:
        config = dataclasses.replace(config, webhook_port=webhook_port)
    if config.webhook_port is not None:
        import speedrun_operator.handlers.webhook  # noqa: F401  (kopf refuses admission handlers without a server)

    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.PLAIN)
    kopf.run(
        standalone=standalone,
        peering_name=None if standalone else peering,
        # Equal priorities would make replicas act together; distinct ones make exactly one act.
        priority=priority if priority is not None else random.randint(1, 2**31 - 1),
        namespaces=list(namespaces),
        clusterwide=not namespaces,
        liveness_endpoint=liveness,
        memo=kopf.Memo(config=config, namespaces=len(namespaces)),
    )
