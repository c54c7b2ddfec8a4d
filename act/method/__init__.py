"""The method: ACT's ideas as tensor functions, the method registry, label noise and the
learning-rate plans. README: *The method* and *Adding a data set, model, pipeline or method*."""
