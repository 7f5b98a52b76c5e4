"""Thin kopf handlers, one module per concern. Importing this package registers them all.

The admission webhook (``handlers.webhook``) registers only when imported, which ``speedrun operator
--webhook-port`` does: kopf refuses to start with admission handlers and no webhook server.
"""

from speedrun_operator.handlers import creation, health, ladder, lifecycle, queue, startup, sync

__all__ = ["creation", "health", "ladder", "lifecycle", "queue", "startup", "sync"]
