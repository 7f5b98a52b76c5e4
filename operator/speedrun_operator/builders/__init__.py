"""Pure builders: a SpeedrunJob in, the Kubernetes objects that run it out."""

from speedrun_operator.builders.names import RAYJOB_NAME_LIMIT, rayjob_name
from speedrun_operator.builders.rayjob import build_rayjob, trainer_entrypoint

__all__ = ["RAYJOB_NAME_LIMIT", "build_rayjob", "rayjob_name", "trainer_entrypoint"]
