"""The step: the loss function of each phase, the compiled and captured step (act/graphs.py),
several processes. docs/pipelines.md, *The step*, and docs/distributed.md."""
