"""A run: its Runtime, its build, the epoch loop, its folder, records, checkpoint and console, and
what it writes at its end (bank, curves). README: *Runtime* and *Runs and results*."""
