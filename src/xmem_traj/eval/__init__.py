"""Evaluation: runs scored against the devkit baselines, devkit prediction JSON, pictures."""
