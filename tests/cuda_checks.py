"""The checks that need a CUDA device, as plain functions: pytest runs them (tests/test_cuda.py,
marked `cuda`), and so does `benchmarks.gpu` on a GPU machine without pytest, each in a process of
its own under a time limit (`python -m tests.cuda_checks NAME TMPDIR`: exit 0 passed, 1 failed).

Each check takes a scratch folder and raises AssertionError (or any error) when it fails. Every
check runs with cuDNN's deterministic algorithms (`deterministic_cudnn`), as the ones comparing
results exactly need.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import torch

CHECKS: dict[str, Callable[[Path], None]] = {}


def check(fn: Callable[[Path], None]) -> Callable[[Path], None]:
    CHECKS[fn.__name__] = fn
    return fn


@contextlib.contextmanager
def deterministic_cudnn():
    """cuDNN's deterministic algorithms for the duration (restored after)."""
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before


@check
def graph_replay_equals_the_eager_step(tmp: Path) -> None:
    from act.run.loop import train_epoch
    from tests.support.tiny import tiny_run

    settings = ("run.device=cuda", "run.amp=off", "run.compile=false")
    eager = tiny_run(tmp, True, *settings, "run.cuda_graph=false")
    graphed = tiny_run(tmp, True, *settings, "run.cuda_graph=true")
    for epoch in range(3):
        a, b = train_epoch(eager, epoch, False), train_epoch(graphed, epoch, False)
        assert a["samples_seen"] == b["samples_seen"]
    assert graphed.steps["robust"].graph is not None, "the robust step did not capture"
    for name in ("rtm", "ntm"):
        a, b = getattr(eager.ctx, name).state_dict(), getattr(graphed.ctx, name).state_dict()
        for k in a:
            torch.testing.assert_close(a[k].float(), b[k].float(), atol=1e-5, rtol=1e-5, msg=f"{name}.{k}")
    torch.testing.assert_close(eager.ctx.bank.ema, graphed.ctx.bank.ema, atol=1e-5, rtol=1e-5)
    assert torch.equal(eager.ctx.bank.count, graphed.ctx.bank.count)


@check
def a_graphed_epoch_never_waits_on_the_host(tmp: Path) -> None:
    from act.step import engine
    from tests.support.tiny import tiny_run

    run = tiny_run(tmp, True, "run.device=cuda", "run.cuda_graph=true")
    engine.set_lrs(run.ctx, 0.01, 0.08)
    for epoch in (0, 1):
        step = run.steps["warmup" if epoch == 0 else "robust"]
        list(run.pipeline.train_batches(epoch))  # first pass: lazy initialisation
        for batch in run.pipeline.train_batches(epoch):
            step(batch, run.stats)  # warm-up and capture happen here
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for batch in run.pipeline.train_batches(epoch):
                step(batch, run.stats)
        finally:
            torch.cuda.set_sync_debug_mode("default")


@check
def a_resumed_graphed_run_captures_anew_and_gives_the_same_metrics(tmp: Path) -> None:
    from act.run.loop import resume, train
    from tests.support.tiny import tiny_config

    def settings(name):
        return tiny_config(tmp, "run.device=cuda", "run.cuda_graph=true", "run.amp=off", "run.progress=false",
                           f"run.out_dir={tmp / 'runs'}", f"run.name={name}")

    train(settings("whole"), out=io.StringIO())
    part = settings("part")
    part.optim.epochs = 2
    train(part, out=io.StringIO())
    resume(tmp / "runs" / "part", ["optim.epochs=3"], out=io.StringIO())
    a, b = ([json.loads(line) for line in (tmp / "runs" / name / "metrics.jsonl").read_text().splitlines()]
            for name in ("whole", "part"))
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):
        assert x["samples_seen"] == y["samples_seen"]
        for key in ("rtm_loss", "ntm_loss"):
            assert math.isclose(x[key], y[key], rel_tol=1e-4), (key, x[key], y[key])


@check
def view_passes_replayed_as_cuda_graphs_give_the_eager_bytes(tmp: Path) -> None:
    from pipelines import build_pipeline
    from tests.support.datafactory import array_source

    def tensor(source, **kw):
        return build_pipeline("tensor", source, (source.train.labels + 1) % 5, batch_size=16,
                              device=torch.device("cuda"), seed=1, static=True, **kw)

    source = array_source(300)
    graphed, eager = tensor(source), tensor(source, graphs=False)
    for epoch in (0, 1):
        for a, b in zip(graphed.train_batches(epoch), eager.train_batches(epoch)):
            assert torch.equal(a.weak, b.weak) and torch.equal(a.strong, b.strong)
    assert graphed.view_graphs() == {"views.both": "graph"}, graphed.view_graphs()


@check
def ops_and_policies_on_cuda_match_the_cpu(tmp: Path) -> None:
    from pipelines.autoaugment_pil import MAGNITUDES
    from pipelines.ops.policy import DRAWS
    from pipelines.ops.slot import OPS, Draws, apply_draws
    from tests.support.images import IMAGES, aa_value, to_batch

    x = to_batch(np.concatenate([IMAGES] * 4))
    for name, op in OPS.items():
        if name != "cutout":
            value = torch.full((len(x),), aa_value(name, MAGNITUDES[name][9], -1), dtype=torch.float64)
            assert torch.equal(op(x.cuda(), value.cuda()).cpu(), op(x, value)), name
    for policy, draw in DRAWS.items():
        draws = draw(x.cuda(), torch.Generator(device="cuda").manual_seed(0))
        out = policy(x.cuda(), torch.Generator(device="cuda").manual_seed(0))
        assert out.is_cuda and out.dtype == torch.uint8
        on_cpu = Draws(*(None if t is None else t.cpu() for t in draws))
        assert torch.equal(out.cpu(), apply_draws(x, on_cpu, static=False)), policy.__name__


@contextlib.contextmanager
def float64():
    """Runs in float64 for the duration (no config key sets it; as tests/test_pack_runs.py does):
    the nets by the default dtype, the views and the bank's EMA cast to it; restored after."""
    import torch.nn.functional as F

    from act.method import functions as M
    from pipelines.base import Pipeline

    normalise, create, before = Pipeline.normalise, vars(M.Bank)["create"], torch.get_default_dtype()
    Pipeline.normalise = lambda self, images: normalise(self, images).to(torch.float64)
    M.Bank.create = classmethod(lambda cls, noisy, classes: cls(count=create.__func__(cls, noisy, classes).count,
                                                                ema=F.one_hot(noisy, classes).to(torch.float64)))
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        Pipeline.normalise, M.Bank.create = normalise, create
        torch.set_default_dtype(before)


@check
def a_compiled_and_graphed_pack_equals_the_eager_pack(tmp: Path) -> None:
    """A pack of 2 tiny runs (built as `act train --pack` builds it, act/pack/run.py) with
    run.compile=true and run.cuda_graph=true against the same pack with both off, epoch by epoch,
    in float64: the same samples, losses and packed nets (rtol 1e-6) after every epoch; the packed
    steps compiled and replayed as graphs, and the pack's view pass (one chunk of 2 x 256 images
    per epoch) too. In float32 the two would part by more than float rounding: compile reorders
    sums, the nets amplify it (5e-4 of the weights after the warm-up epoch on the CPU) and a
    sample at the selection threshold flips (7% of a robust epoch's loss); in float64 the
    compiled pack is the eager one to 1e-14 on the CPU."""
    from act.pack.run import build, pack_of, read_pack, train_pack_epoch
    from tests.support.tiny import TINY, tiny_data

    def pack(name: str, stack: contextlib.ExitStack, *settings: str):
        """The two runs (batches of 32: chunks of 256 and 144) and their pack."""
        runs = [{"overrides": [*TINY, f"data.root={tiny_data(tmp)}", "run.device=cuda", "run.amp=off",
                               "optim.batch_size=32", "run.progress=false", "run.plots=false", *settings,
                               f"run.seed={seed}", f"run.out_dir={tmp / name}", f"run.name=run{seed}"]}
                for seed in (0, 1)]
        (tmp / f"{name}.yaml").write_text(json.dumps({"runs": runs}))  # JSON is YAML
        members = [build(e, stack, io.StringIO()) for e in read_pack(tmp / f"{name}.yaml")]
        return members, pack_of(members, 0)

    with float64(), contextlib.ExitStack() as stack:
        eager_runs, eager = pack("eager", stack, "run.compile=false", "run.cuda_graph=false")
        graphed_runs, graphed = pack("graphed", stack, "run.compile=true", "run.cuda_graph=true")
        for epoch in range(3):
            a = train_pack_epoch(eager, eager_runs, epoch, False)
            b = train_pack_epoch(graphed, graphed_runs, epoch, False)
            for k, (u, v) in enumerate(zip(a, b, strict=True)):
                assert u["samples_seen"] == v["samples_seen"] == 400, (k, epoch, u["samples_seen"], v["samples_seen"])
                assert u["selected_frac"] == v["selected_frac"], (k, epoch, u["selected_frac"], v["selected_frac"])
                for key in ("rtm_loss", "ntm_loss"):
                    assert math.isclose(u[key], v[key], rel_tol=1e-6), (k, epoch, key, u[key], v[key])
            for net in ("rtm", "ntm"):
                x, y = (getattr(p.ctx, net).state_dict() for p in (eager, graphed))
                for key in x:
                    torch.testing.assert_close(x[key], y[key], rtol=1e-6, atol=1e-9, msg=f"{net}.{key}, epoch {epoch}")
    modes = {phase: step.mode for phase, step in graphed.steps.items()}
    assert modes == {"warmup": "graph", "robust": "graph"}, modes
    compiled = {phase: step.compile_mode for phase, step in graphed.steps.items()}
    assert set(compiled.values()) == {"compiled"}, compiled
    for member in graphed_runs:
        views = member.run.pipeline.view_graphs()
        assert views.get("views.pack.both") == "graph", views


def run_check(name: str, tmp: Path) -> None:
    """Check `name` in scratch folder `tmp`, with deterministic cuDNN."""
    tmp.mkdir(parents=True, exist_ok=True)
    with deterministic_cudnn():
        CHECKS[name](tmp)


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.cuda_checks NAME [TMPDIR]`: 0 when the check passed, 1 (and its error) when not."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in CHECKS:
        print(f"usage: python -m tests.cuda_checks NAME [TMPDIR]; NAME one of {', '.join(CHECKS)}", file=sys.stderr)
        return 2
    tmp = Path(args[1]) if len(args) > 1 else Path(tempfile.mkdtemp(prefix="act-cuda-check-"))
    try:
        run_check(args[0], tmp)
    except Exception:  # noqa: BLE001 - the check's failure is its result
        traceback.print_exc()
        return 1
    print(f"{args[0]}: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
