"""Leaderboard submissions: export a run's folder, check it against its config, and rank results."""

from speedrun_operator.submissions.folder import results_problems

__all__ = ["results_problems"]
