"""Pipelines: a Source in, Batches on the training device out. The registry and `auto` rules."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from act.datasets.base import Source
from act.errors import ActError
from pipelines.base import Batch, Pipeline
from pipelines.dali import DaliPipeline
from pipelines.ffcv import FfcvPipeline
from pipelines.reference import ReferencePipeline
from pipelines.tensor import TensorPipeline

PIPELINES: dict[str, type[Pipeline]] = {"reference": ReferencePipeline, "tensor": TensorPipeline,
                                        "dali": DaliPipeline, "ffcv": FfcvPipeline}

__all__ = ["Batch", "Pipeline", "PIPELINES", "build_pipeline", "resolve_pipeline_name"]


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


def dali_installed() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True


def build_pipeline(name: str, source: Source, noisy: np.ndarray, **kwargs) -> Pipeline:
    name = resolve_pipeline_name(name, source, torch.device(kwargs.get("device", "cpu")), kwargs.get("path"))
    if name not in PIPELINES:
        raise ActError(f"pipeline.name={name!r} is not available; choose auto or one of {', '.join(PIPELINES)}")
    return PIPELINES[name](source, noisy, **kwargs)
