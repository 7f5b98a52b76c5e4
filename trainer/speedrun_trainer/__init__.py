"""The trainer: a SpeedrunJob trained with Levanter, its results in Marin's format, its progress on the job."""
