"""`act sweep`: a paper table in one command (docs/sweeps.md).

A sweep file names the cells of a table (spec.py); each cell is an ordinary run folder under
`DIR/runs/`, started or continued by `act train` in a process of its own, so report, issues and
resume read it as any run. state.py reads a cell's state from its folder, executors.py runs the
processes: local ones over the machine's GPUs, or submitit jobs (SLURM, or its local executor).
act/commands/sweep.py is the command.
"""
