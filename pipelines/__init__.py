"""Pipelines: a Source in, Batches on the training device out. The `auto` rules and the builder.

The pipelines themselves are registered by their modules (pipelines/registry.py); importing
this package registers the built-in ones.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from act.datasets.base import Source
from act.errors import ActError
from pipelines import tensor, reference, dali, ffcv  # noqa: F401, I001  (each registers its pipeline, in the order of pipeline.name's choices)
from pipelines.base import Batch, Pipeline
from pipelines.registry import PIPELINES, pipeline_names, register, view_names

__all__ = ["Batch", "Pipeline", "PIPELINES", "build_pipeline", "pipeline_names", "register",
           "resolve_pipeline_name", "resolve_workers", "view_names"]


def resolve_pipeline_name(name: str, source: Source, device: torch.device, path: str | None) -> str:
    """`auto` -> the best pipeline available for this source and device."""
    if name != "auto":
        return name
    if source.is_array:
        return "tensor"
    if path and (Path(path) / "manifest.json").is_file() and device.type == "cuda" and dali_installed():
        return "dali"
    if path and (Path(path) / "train.beton").is_file():
        return "ffcv"
    return "reference"


def resolve_workers(workers: int) -> int:
    """pipeline.workers: -1 is one worker per CPU core, at most 8."""
    return workers if workers >= 0 else min(8, os.cpu_count() or 1)


def dali_installed() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True


def build_pipeline(name: str, source: Source, noisy: np.ndarray, *, workers: int = 0, **kwargs) -> Pipeline:
    """The pipeline `name` (or `auto`'s pick) over `source` with the training labels `noisy`."""
    name = resolve_pipeline_name(name, source, torch.device(kwargs.get("device", "cpu")), kwargs.get("path"))
    if name not in PIPELINES:
        raise ActError(f"pipeline.name={name!r} is not available; choose auto or one of {', '.join(PIPELINES)}")
    return PIPELINES[name](source, noisy, workers=resolve_workers(workers), **kwargs)
