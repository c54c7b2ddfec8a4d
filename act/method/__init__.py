"""The method: ACT's ideas as tensor functions, the method registry, label noise and the
learning-rate plans. docs/ACT_SPEC.md (the method), docs/fidelity.md and docs/layout.md, *Adding a
data set, a model, a pipeline or a method*."""
