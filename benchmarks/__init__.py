"""Benchmarks: each engine timed beside the tool a user would otherwise use, as ratios in one run."""
