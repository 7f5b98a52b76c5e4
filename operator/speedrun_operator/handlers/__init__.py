"""Thin kopf handlers, one module per concern. Importing this package registers them all."""

from speedrun_operator.handlers import creation, lifecycle, startup, sync, webhook

__all__ = ["creation", "lifecycle", "startup", "sync", "webhook"]
