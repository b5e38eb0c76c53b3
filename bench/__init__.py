"""`make bench`: the portal at N certificates on a throw-away PostgreSQL (docs/performance.md).

A benchmark, not a test: every figure is a ratio against a baseline timed beside it in the same run
(medians, min and max of interleaved rounds), because the machine it runs on is shared and noisy.
"""
