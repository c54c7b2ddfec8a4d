"""The DALI and FFCV pipelines assemble batches without making the host wait for the device.

Run on the CPU under the op recorder: a value read to the host (`.item()`, `.tolist()` of a
device tensor), a value-dependent shape or a tensor built from Python data would show there,
as it would block on a GPU. The epoch order goes to the device once per epoch
(`Pipeline.device_order`); labels are looked up on the device (`Pipeline.labelled`).
"""
import importlib.util

import pytest
import torch
from support.datafactory import write_image_folder

from act.commands.convert import convert
from act.config import load_config
from act.datasets.converted import read_converted
from benchmarks.recorder import OpRecorder
from pipelines import build_pipeline

needs_dali = pytest.mark.skipif(importlib.util.find_spec("nvidia.dali") is None, reason="the dali extra is not installed")
needs_ffcv = pytest.mark.skipif(importlib.util.find_spec("ffcv") is None, reason="the ffcv extra is not installed")


def converted(tmp_path, fmt: str):
    root = write_image_folder(tmp_path / "images", ["cat", "dog", "owl"], per_class=6, size=44)
    cfg = load_config(None, ["data.name=folder", f"data.root={root}", "data.image_size=32"])
    convert(cfg, fmt, tmp_path / "out", progress=False)
    return read_converted(tmp_path / "out")


def assembled_without_syncs(pipeline) -> list:
    """An epoch's batches, every one after the first recorded: the first epoch builds the device's
    constant tables (cached) and each epoch's first batch sets the loader up (FFCV sizes its
    buffers from numpy dtypes), once per epoch, not per batch."""
    list(pipeline.train_batches(1))
    batches = pipeline.train_batches(0)
    first = next(batches)
    with OpRecorder() as recorder:
        rest = list(batches)
    assert len(rest) > 1 and dict(recorder.record.syncs) == {}
    return [first, *rest]


@needs_dali
def test_dali_batches_are_assembled_without_a_host_sync(tmp_path):
    source = converted(tmp_path, "dali")
    noisy = (source.train.labels + 1) % 3
    p = build_pipeline("dali", source, noisy, batch_size=5, device=torch.device("cpu"), seed=0, workers=1, static=True)
    batches = assembled_without_syncs(p)
    assert torch.equal(torch.cat([b.index for b in batches]), p.epoch_order(0))
    assert all(torch.equal(b.label, torch.as_tensor(noisy)[b.index]) for b in batches)


@needs_ffcv
def test_ffcv_batches_are_assembled_without_a_host_sync(tmp_path):
    source = converted(tmp_path, "ffcv")
    noisy = (source.train.labels + 1) % 3
    p = build_pipeline("ffcv", source, noisy, batch_size=5, device=torch.device("cpu"), seed=0, workers=1,
                       path=str(tmp_path / "out"), static=True)  # the strong view as on a GPU
    batches = assembled_without_syncs(p)
    assert torch.equal(torch.cat([b.index for b in batches]), p.epoch_order(0))
    assert all(torch.equal(b.true_label, torch.as_tensor(source.train.labels)[b.index]) for b in batches)
