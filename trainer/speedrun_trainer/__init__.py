"""The trainer: a SpeedrunJob trained with Levanter, results in Marin's format, progress on the job."""
