"""Packed runs (issue 23): K runs of a small network in one step, each still its own run.

The grouped twin of K models (act/pack/models.py) is bitwise its model at K = 1 (so the two
cannot drift apart) and equals the K models at K = 3 in float64; a pack of 4 runs (2 seeds x 2
noise rates, each with its own labels, data order, views, initial weights and bank) trained by
the packed step (act/pack/step.py) equals the 4 runs trained alone by the engine's step. The
K runs' batches built together (one view pass per chunk of the pack) are each run's batches alone,
byte for byte, on the static and the picked-samples path.
"""
import copy
import dataclasses

import pytest
import torch

from act.config import OptimConfig
from act.errors import ActError
from act.method import functions as M
from act.method.noise import corrupt, transition_matrix
from act.models import create_model
from act.pack import step as packed
from act.pack.models import pack, stack_images, unpack
from act.run.build import build_optimisers
from act.step import engine
from benchmarks.recorder import OpRecorder
from pipelines import build_pipeline
from pipelines.base import Batch
from pipelines.tensor import PackViews, pack_views
from support.datafactory import array_source

MODELS = ("sevencnn", "resnet32", "tinycnn")
CLASSES, SIZE = 10, 16


def models(name: str, runs: int, dtype: torch.dtype = torch.float32) -> list[torch.nn.Module]:
    out = []
    for seed in range(runs):
        torch.manual_seed(seed)
        out.append(create_model(name, CLASSES, 3, SIZE).to(dtype))
    return out


def images(runs: int, dtype: torch.dtype, batch: int = 16) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return [torch.randn(batch, 3, SIZE, SIZE, generator=g, dtype=dtype) for _ in range(runs)]


def forward_backward(nets: list[torch.nn.Module], twin: torch.nn.Module, xs: list[torch.Tensor]):
    """Each net on its batch and the twin on all of them, one backward each from the same output
    gradients; returns (the nets' logits, the twin's logits)."""
    outs = [net(x) for net, x in zip(nets, xs)]
    packed_out = twin(stack_images(xs))
    grads = [torch.randn_like(o, generator=torch.Generator().manual_seed(k)) for k, o in enumerate(outs)]
    sum((o * g).sum() for o, g in zip(outs, grads)).backward()
    (packed_out * torch.stack(grads, dim=1)).sum().backward()
    return outs, packed_out


def grads_of_run(twin: torch.nn.Module, k: int) -> dict[str, torch.Tensor]:
    return {name.removeprefix("net."): p.grad.unflatten(0, (twin.runs, -1))[k] for name, p in twin.named_parameters()}


@pytest.mark.parametrize("name", MODELS)
def test_the_twin_of_one_model_is_that_model_bit_for_bit(name):
    [net] = models(name, 1)
    twin = pack([copy.deepcopy(net)])
    [out], packed_out = forward_backward([net], twin, images(1, torch.float32))
    assert torch.equal(packed_out[:, 0], out)
    grads = grads_of_run(twin, 0)
    assert all(torch.equal(grads[n], p.grad) for n, p in net.named_parameters())
    state = unpack(twin, 0)  # batch-norm running statistics after the train-mode forward
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("name", MODELS)
def test_the_twin_of_three_models_is_the_three_models(name):
    nets = models(name, 3, torch.float64)
    twin = pack(copy.deepcopy(nets))
    outs, packed_out = forward_backward(nets, twin, images(3, torch.float64))
    for k, net in enumerate(nets):
        assert torch.allclose(packed_out[:, k], outs[k], rtol=0, atol=1e-12)
        grads, state = grads_of_run(twin, k), unpack(twin, k)
        assert all(torch.allclose(grads[n], p.grad, rtol=0, atol=1e-12) for n, p in net.named_parameters())
        assert all(torch.allclose(state[key].double(), v.double(), rtol=0, atol=1e-12)
                   for key, v in net.state_dict().items())


def test_unpack_gives_each_run_its_own_weights_in_the_plain_layout():
    nets = models("sevencnn", 3)
    twin = pack(nets)
    for k, net in enumerate(nets):
        state = unpack(twin, k)
        assert state.keys() == net.state_dict().keys()
        assert all(torch.equal(state[key], v) for key, v in net.state_dict().items())


def test_other_models_are_refused_in_one_line_naming_those_that_pack():
    with pytest.raises(ActError, match="sevencnn, resnet32, tinycnn") as info:
        pack([torch.nn.Sequential(torch.nn.Linear(4, 2))])
    assert "\n" not in str(info.value)
    with pytest.raises(ActError, match="of one shape"):
        pack([create_model("tinycnn", 10), create_model("tinycnn", 5)])


# The packed step against the runs alone: 4 runs, 2 seeds x 2 noise rates, in float64.
RUNS = [(seed, rate) for seed in (0, 1) for rate in (0.2, 0.6)]
SAMPLES, BATCH, STEP_SIZE = 64, 32, 8
EPOCHS = ("warmup", "robust", "robust")  # a warm-up epoch and two robust epochs
COUNTS = ("samples", "selected", "selected_clean", "clean", "mining_steps", "steps", "rtm_correct", "ntm_correct")
TOLERANCE = 1e-10


def dataset() -> tuple[torch.Tensor, torch.Tensor]:
    """SAMPLES float64 images of CLASSES classes, each class a colour, so the nets learn (and
    disagree) within a few steps; their true labels."""
    g = torch.Generator().manual_seed(3)
    true = torch.arange(SAMPLES) % CLASSES
    colours = torch.randn(CLASSES, 3, 1, 1, generator=g, dtype=torch.float64)
    return colours[true] + 0.8 * torch.randn(SAMPLES, 3, STEP_SIZE, STEP_SIZE, generator=g, dtype=torch.float64), true


def noisy_labels(seed: int, rate: float, true: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(corrupt(true.numpy(), transition_matrix("symmetric", rate, 0, CLASSES), seed))


def run_alone(name: str, seed: int, noisy: torch.Tensor) -> engine.StepContext:
    """A run as it starts alone: both nets from its seed (act/run/build.py), the trainer's fused
    SGD, its bank over its noisy labels (the EMA in float64 like the nets)."""
    torch.manual_seed(seed)
    rtm, ntm = (create_model(name, CLASSES, 3, STEP_SIZE).double() for _ in range(2))
    rtm_opt, ntm_opt = build_optimisers(rtm, ntm, OptimConfig(), torch.device("cpu"))
    bank = M.Bank.create(noisy, CLASSES)
    return engine.StepContext(rtm=rtm, ntm=ntm, rtm_opt=rtm_opt, ntm_opt=ntm_opt,
                              bank=M.Bank(count=bank.count, ema=bank.ema.double()))


def epoch_batches(run: int, x: torch.Tensor, true: torch.Tensor, noisy: torch.Tensor, epoch: int) -> list[Batch]:
    """One epoch of run `run`: its own order and its own (noise) views."""
    g = torch.Generator().manual_seed(1000 * run + epoch)
    order = torch.randperm(SAMPLES, generator=g)
    batches = []
    for index in order.split(BATCH):
        weak = x[index] + 0.1 * torch.randn(x[index].shape, generator=g, dtype=x.dtype)
        strong = x[index] + 0.5 * torch.randn(x[index].shape, generator=g, dtype=x.dtype)
        batches.append(Batch(index=index, weak=weak, strong=strong, label=noisy[index], true_label=true[index]))
    return batches


def assert_same_statistics(alone: list[dict], pack: list[dict]) -> None:
    for a, p in zip(alone, pack, strict=True):
        assert {k: a[k] for k in COUNTS} == {k: p[k] for k in COUNTS}
        assert abs(a["rtm_loss"] - p["rtm_loss"]) <= TOLERANCE and abs(a["ntm_loss"] - p["ntm_loss"]) <= TOLERANCE


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.mark.parametrize("name", ["tinycnn", "sevencnn"])
def test_a_pack_of_four_runs_trains_as_the_four_runs_alone(name):
    x, true = dataset()
    noisy = [noisy_labels(seed, rate, true) for seed, rate in RUNS]
    runs = [run_alone(name, seed, labels) for (seed, _), labels in zip(RUNS, noisy)]
    pack_ctx = packed.pack_contexts(runs)
    statistics = []
    for epoch, phase in enumerate(EPOCHS):
        for ctx in (*runs, pack_ctx):
            engine.set_lrs(ctx, 0.02, 0.04)
        per_run = [epoch_batches(k, x, true, noisy[k], epoch) for k in range(len(runs))]
        for batches in zip(*per_run):
            alone = [engine.EpochStats(torch.device("cpu")) for _ in runs]
            for ctx, batch, stats in zip(runs, batches, alone):
                engine.eager_step(ctx, getattr(engine, f"{phase}_losses"), batch, epoch, stats)
            pack_stats = packed.PackStats(torch.device("cpu"), len(runs))
            engine.eager_step(pack_ctx, packed.PACKED_LOSSES[phase], packed.stack_batches(list(batches)), epoch,
                              pack_stats)
            assert_same_statistics([s.read() for s in alone], pack_stats.read())
            statistics.append(pack_stats.read())
    for k, ctx in enumerate(runs):
        assert max_difference(unpack(pack_ctx.rtm, k), ctx.rtm.state_dict()) <= TOLERANCE
        assert max_difference(unpack(pack_ctx.ntm, k), ctx.ntm.state_dict()) <= TOLERANCE
        assert torch.equal(pack_ctx.bank.count[k], ctx.bank.count)
        assert (pack_ctx.bank.ema[k] - ctx.bank.ema).abs().max() <= TOLERANCE
    robust = [row for step in statistics[SAMPLES // BATCH:] for row in step]
    assert 0 < sum(row["mining_steps"] for row in robust) < len(robust)  # steps with mining on and off
    assert all(0 < row["selected"] < BATCH for row in robust[:len(RUNS)])  # selection at work from the start


def test_runs_of_other_method_settings_or_learning_rates_are_not_packed():
    x, true = dataset()
    runs = [run_alone("tinycnn", seed, noisy_labels(seed, 0.2, true)) for seed in (0, 1)]
    with pytest.raises(ActError, match="the same tau"):
        packed.pack_contexts([runs[0], dataclasses.replace(runs[1], tau=0.5)])
    engine.set_lrs(runs[1], 0.02, 0.04)
    with pytest.raises(ActError, match="the same optimiser settings and learning rates"):
        packed.pack_contexts(runs)


def test_the_packed_step_runs_as_a_phase_step_from_static_buffers_without_host_sync():
    """engine.PhaseStep's capturable path (what a GPU replays as a CUDA graph) takes a pack as it is."""
    x, true = dataset()
    noisy = [noisy_labels(seed, rate, true) for seed, rate in RUNS]
    eager, static = (packed.pack_contexts([run_alone("tinycnn", seed, labels)
                                           for (seed, _), labels in zip(RUNS, noisy)]) for _ in range(2))
    step = engine.PhaseStep(static, packed.robust_losses, BATCH, compile=False, static_inputs=True)
    eager_stats, static_stats = (packed.PackStats(torch.device("cpu"), len(RUNS)) for _ in range(2))
    for ctx in (eager, static):
        engine.set_lrs(ctx, 0.02, 0.04)
        ctx.set_epoch(1)
    per_run = [epoch_batches(k, x, true, noisy[k], 1) for k in range(len(RUNS))]
    for i, batch in enumerate(packed.stack_batches(list(b)) for b in zip(*per_run)):
        engine.eager_step(eager, packed.robust_losses, batch, 1, eager_stats)
        with OpRecorder() as recorder:
            step(batch, static_stats)
        assert i == 0 or dict(recorder.record.syncs) == {}  # the first call allocates the buffers
    assert torch.equal(eager_stats.totals, static_stats.totals)
    assert all(torch.equal(a, b) for a, b in zip(eager.rtm.state_dict().values(), static.rtm.state_dict().values()))


# The pack's views: the K runs' batches built together (pipelines/tensor.py `PackViews`).
def views_of_runs(static: bool, seeds=(0, 1, 2)) -> list:
    """The tensor pipelines of K runs of one data set (150 12 x 12 images in batches of 8: two full
    chunks of 64 and one of 22 per epoch), each with its own seed and noisy labels."""
    source = array_source(150, size=12)
    return [build_pipeline("tensor", source, (source.train.labels + seed) % 5, batch_size=8,
                           device=torch.device("cpu"), seed=seed, static=static) for seed in seeds]


@pytest.mark.parametrize("static", [True, False], ids=["static", "picked"])
def test_a_packs_batches_are_each_runs_batches_alone_byte_for_byte(static):
    """Each run draws as it does alone (its order, its generator), one apply pass over the K
    chunks: the same index, labels, weak and strong bytes; an epoch without the strong view
    (still drawn) leaves the next one the same; on the static path the captured passes replay."""
    alone, packed = views_of_runs(static), views_of_runs(static)
    views = pack_views(packed)
    assert pack_views(packed) is views and packed[1].pack is views
    for epoch, strong in ((0, None), (1, False), (2, None)):
        got = list(views.train_batches(epoch, strong))
        want = list(zip(*(p.train_batches(epoch, strong) for p in alone), strict=True))
        assert len(got) == len(want) == 19
        for step_got, step_want in zip(got, want):
            assert len(step_got) == 3
            for a, b in zip(step_got, step_want):
                assert torch.equal(a.index, b.index) and torch.equal(a.label, b.label)
                assert torch.equal(a.true_label, b.true_label) and torch.equal(a.weak, b.weak)
                assert (a.strong is None) == (b.strong is None) == (strong is False)
                assert a.strong is None or torch.equal(a.strong, b.strong)
        assert len({tuple(batches[0].index.tolist()) for batches in zip(*got)}) == 3  # each run its own order
    expected = {"views.pack.weak": "graph", "views.pack.both": "graph"} if static else {}
    assert packed[0].view_graphs() == expected and packed[2].view_graphs() == expected


def test_pipelines_that_do_not_share_their_views_are_not_packed():
    with pytest.raises(ActError, match="must share their data, batch size, views and device"):
        PackViews(views_of_runs(True, seeds=(0,)) + views_of_runs(False, seeds=(1,)))
