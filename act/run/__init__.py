"""A run: its Runtime, its build, the epoch loop, its folder, records, checkpoint and console.
README: *Runtime* and *Runs and results*."""
