"""Pipelines: a Source in, Batches on the training device out; the builder (a run's `auto` is
decided by its Runtime, act/run/runtime.py).

The pipelines themselves are registered by their modules (pipelines/registry.py); importing
this package registers the built-in ones.
"""
from __future__ import annotations

import importlib.util

import numpy as np

from act.datasets.base import Source
from act.errors import ActError
from pipelines import tensor, reference, dali, ffcv  # noqa: F401, I001  (each registers its pipeline, in the order of pipeline.name's choices)
from pipelines.base import Batch, Pipeline
from pipelines.registry import PIPELINES, pipeline_names, register, view_names

__all__ = ["Batch", "Pipeline", "PIPELINES", "build_pipeline", "pipeline_names", "register",
           "dali_installed", "view_names"]


def dali_installed() -> bool:
    """Whether DALI is installed, without importing it (half a second, at every run's start)."""
    return importlib.util.find_spec("nvidia.dali") is not None


def build_pipeline(name: str, source: Source, noisy: np.ndarray, *, workers: int = 0, **kwargs) -> Pipeline:
    """The pipeline `name` over `source` with the training labels `noisy` (a run's `auto` and
    `pipeline.workers=-1` are decided by its Runtime, act/run/runtime.py)."""
    if name not in PIPELINES:
        raise ActError(f"pipeline.name={name!r} is not available; choose auto or one of {', '.join(PIPELINES)}")
    return PIPELINES[name](source, noisy, workers=workers, **kwargs)
