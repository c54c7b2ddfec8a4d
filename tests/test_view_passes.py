"""The views on a GPU: built only in the epochs that read them, applied by one capturable pass per
chunk (or batch) replayed as a CUDA graph, and handed to the device without blocking copies.

On the CPU `act.graphs.EagerGraph` stands in for the CUDA graph (same static buffers, capture and
replay), and the op and copy recorders of benchmarks/recorder.py see what would stall a GPU.
"""
import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from support.datafactory import array_source

from act import graphs
from act.run.loop import train_batches
from benchmarks.recorder import CopyRecorder, OpRecorder
from pipelines import build_pipeline
from pipelines.ops.policy import DRAWS, POLICIES
from pipelines.ops.slot import apply_static
from pipelines.reference import ReferencePipeline
from support.tiny import tiny_run
from test_cuda_graph import FailingCapture


def tensor(source, **kw):
    args = dict(batch_size=16, device=torch.device("cpu"), seed=1, static=True)  # chunks of 8 batches
    args.update(kw)
    return build_pipeline("tensor", source, (source.train.labels + 1) % 5, **args)


def test_an_epoch_without_the_strong_view_builds_none_and_changes_no_other_view():
    source = array_source(300)
    both, weak_only, none_at_all = tensor(source), tensor(source), tensor(source, strong=False)
    with OpRecorder() as without:
        skipped = list(weak_only.train_batches(0, strong=False))
    with OpRecorder() as no_strong_at_all:
        list(none_at_all.train_batches(0))
    built = list(both.train_batches(0))
    assert all(b.strong is None for b in skipped) and all(b.strong is not None for b in built)
    assert all(torch.equal(a.weak, b.weak) and torch.equal(a.index, b.index) for a, b in zip(skipped, built))
    # no image of the strong view is made: as many image ops as a run that has no strong view
    assert without.record.image_ops == no_strong_at_all.record.image_ops
    later = [list(p.train_batches(1)) for p in (weak_only, tensor(source))]
    assert all(torch.equal(a.weak, b.weak) and torch.equal(a.strong, b.strong) for a, b in zip(*later))


def test_acts_warm_up_epochs_have_no_strong_view_and_its_robust_epochs_have_one(tmp_path):
    run = tiny_run(tmp_path, True)  # one warm-up epoch
    assert all(b.strong is None for b in train_batches(run, 0))
    assert all(b.strong is not None for b in train_batches(run, 1))


@pytest.mark.parametrize("name", list(POLICIES))
def test_the_static_apply_pass_has_no_sync_and_shapes_that_do_not_depend_on_the_draws(name):
    images = torch.from_numpy(np.random.RandomState(0).randint(0, 256, (64, 3, 32, 32), dtype=np.uint8))
    records = []
    for seed in (0, 1):
        draws = DRAWS[POLICIES[name]](images, torch.Generator().manual_seed(seed))
        with OpRecorder() as recorder:
            apply_static(images, draws)
        records.append(recorder.record)
    assert records[0].total_syncs == records[1].total_syncs == 0  # no value read, no tensor from host data
    assert records[0].shapes == records[1].shapes  # the same ops on the same shapes whatever the draws


def test_the_tensor_pipelines_chunk_pass_has_no_sync_and_static_shapes():
    p = tensor(array_source(300))
    index = torch.arange(128)
    records = []
    for seed in (0, 1):
        generator = torch.Generator().manual_seed(seed)
        weak, strong = p.draw_weak(128, generator), p.draw_strong(128, generator)
        with OpRecorder() as recorder:
            p.apply_views(index, weak, strong)
        records.append(recorder.record)
    assert records[0].total_syncs == 0 and records[0].shapes == records[1].shapes


def test_replayed_chunk_passes_give_the_eager_bytes():
    source = array_source(300)
    replayed, eager = tensor(source), tensor(source, graphs=False)
    for epoch in (0, 1):
        for a, b in zip(replayed.train_batches(epoch), eager.train_batches(epoch)):
            assert torch.equal(a.weak, b.weak) and torch.equal(a.strong, b.strong)
    assert replayed.view_graphs() == {"views.both": "graph"} and eager.view_graphs() == {}


def test_a_view_pass_whose_capture_fails_runs_eagerly_and_says_why(monkeypatch):
    monkeypatch.setattr(graphs, "graph_type", lambda device: FailingCapture)
    source = array_source(300)
    failed, eager = tensor(source), tensor(source, graphs=False)
    for a, b in zip(failed.train_batches(1), eager.train_batches(1)):
        assert torch.equal(a.strong, b.strong)
    assert failed.view_graphs()["views.both"].startswith("fell back: RuntimeError: operation not permitted")


def loaders():
    names = ["tensor", "reference"]
    for name, module in (("dali", "nvidia.dali"), ("ffcv", "ffcv")):
        names.append(pytest.param(name, marks=pytest.mark.skipif(importlib.util.find_spec(module) is None,
                                                                    reason=f"the {name} extra is not installed")))
    return names


@pytest.mark.parametrize("name", loaders())
def test_batches_reach_the_device_without_a_blocking_copy(tmp_path, name):
    from benchmarks.gpu_proxy import blocking_copies

    counted = blocking_copies(name, tmp_path)
    assert counted["batches"] > 1 and counted["blocking_per_batch"] == 0


def test_the_reference_loader_pins_its_batches_for_a_gpu():
    dataset = list(range(4))
    on = ReferencePipeline.loader(SimpleNamespace(workers=0, device=torch.device("cuda")), dataset, batch_size=2)
    off = ReferencePipeline.loader(SimpleNamespace(workers=0, device=torch.device("cpu")), dataset, batch_size=2)
    assert on.pin_memory and not off.pin_memory


needs_dali = pytest.mark.skipif(importlib.util.find_spec("nvidia.dali") is None, reason="the dali extra is not installed")


def dali(source, **kw):
    return build_pipeline("dali", source, source.train.labels, batch_size=5, device=torch.device("cpu"), seed=0,
                          workers=1, static=True, test_batch_size=4, **kw)


@needs_dali
def test_dali_builds_each_graph_once_and_draws_each_epochs_crops_from_its_seed(tmp_path, monkeypatch):
    from pipelines.dali import DaliPipeline
    from test_pipeline_syncs import converted

    source = converted(tmp_path, "dali")
    builds = []
    real = DaliPipeline.build
    monkeypatch.setattr(DaliPipeline, "build", lambda self, key, *a: builds.append(key) or real(self, key, *a))
    p = dali(source)
    first = [list(p.train_batches(epoch, strong=epoch > 0)) for epoch in range(3)]
    for _ in range(2):
        list(p.test_batches())
    assert sorted(builds) == [(False, ""), (True, ""), (True, "uint8")]  # warm-up graph, robust graph, test graph
    assert all(b.strong is None for b in first[0]) and all(b.strong is not None for b in first[1])
    again = list(dali(source).train_batches(2))  # a resumed run's epoch 2
    assert all(torch.equal(a.weak, b.weak) and torch.equal(a.strong, b.strong) for a, b in zip(first[2], again))
    assert not torch.equal(first[1][0].weak, first[2][0].weak)  # another epoch, other crops


@needs_dali
def test_a_dali_pass_left_halfway_does_not_leak_into_the_next(tmp_path):
    from test_pipeline_syncs import converted

    source = converted(tmp_path, "dali")
    p = dali(source)
    next(p.train_batches(0))  # left after one batch: its prefetched batches must not reach epoch 1
    assert [b.index.tolist() for b in p.train_batches(1)] == [b.index.tolist() for b in dali(source).train_batches(1)]
