"""The step: the loss function of each phase, the compiled and captured step (act/graphs.py),
several processes. README: *The step* and *Several GPUs*."""
