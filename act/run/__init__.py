"""A run: its Runtime, its build, the epoch loop, its folder, records, checkpoint and console, and
what it writes at its end (bank, curves). docs/runs.md, and docs/config.md, *Runtime*."""
