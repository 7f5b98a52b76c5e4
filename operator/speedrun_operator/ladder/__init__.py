"""A SpeedrunLadder's rungs as SpeedrunJobs: the merge of each rung over the base, and their validation."""
