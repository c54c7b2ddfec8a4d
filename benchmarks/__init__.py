"""Benchmarks: scripts that time the trainer's parts and record figures (tests never assert timings)."""
