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


@check
def a_compiled_and_graphed_pack_equals_the_eager_pack(tmp: Path) -> None:
    """A pack of 2 tiny runs (act train --pack) with run.compile=true and run.cuda_graph=true
    against the same pack with both off: the same samples, losses and weights within 1e-4; the
    packed steps and the pack's view pass (one chunk of 2 x 256 images) replayed as graphs."""
    from act.pack.run import train_pack
    from act.run import checkpoint
    from tests.support.tiny import TINY, tiny_data

    def pack(name: str, *settings: str) -> list[Path]:
        """The two runs' folders after `act train --pack` (batches of 32: chunks of 256 and 144)."""
        runs = [{"overrides": [*TINY, f"data.root={tiny_data(tmp)}", "run.device=cuda", "run.amp=off",
                               "optim.batch_size=32", "run.progress=false", "run.plots=false", *settings,
                               f"run.seed={seed}", f"run.out_dir={tmp / name}", f"run.name=run{seed}"]}
                for seed in (0, 1)]
        (tmp / f"{name}.yaml").write_text(json.dumps({"runs": runs}))  # JSON is YAML
        train_pack(tmp / f"{name}.yaml", out=io.StringIO())
        return [tmp / name / f"run{seed}" for seed in (0, 1)]

    eager = pack("eager", "run.compile=false", "run.cuda_graph=false")
    graphed = pack("graphed", "run.compile=true", "run.cuda_graph=true")
    for a, b in zip(eager, graphed):
        x, y = ([json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (a, b))
        assert len(x) == len(y) == 3
        for u, v in zip(x, y):
            assert u["samples_seen"] == v["samples_seen"]
            for key in ("rtm_loss", "ntm_loss"):
                assert math.isclose(u[key], v[key], rel_tol=1e-4), (b.name, u["epoch"], key, u[key], v[key])
        modes = json.loads((b / "summary.json").read_text())["cuda_graph"]
        assert {k: modes.get(k) for k in ("warmup", "robust", "views.pack.both")} == \
               {"warmup": "graph", "robust": "graph", "views.pack.both": "graph"}, modes
        u, v = checkpoint.load(a / "checkpoint.pt"), checkpoint.load(b / "checkpoint.pt")
        for net in ("rtm", "ntm"):
            for k in u[net]:
                torch.testing.assert_close(u[net][k].float(), v[net][k].float(), rtol=1e-4, atol=1e-5,
                                           msg=f"{b.name} {net}.{k}")


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
