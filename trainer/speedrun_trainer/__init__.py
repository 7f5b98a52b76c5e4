"""The trainer: a SpeedrunJob trained with Levanter, results in Marin's format, progress on the job."""

# Before any submodule imports Levanter: storage configures gcsfs, which must happen before gcsfs loads.
from speedrun_operator import storage as storage
