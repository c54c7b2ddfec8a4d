"""The step: the loss function of each phase, the compiled and captured step, CUDA graphs,
several processes. README: *The step* and *Several GPUs*."""
