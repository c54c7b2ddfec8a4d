"""What a new machine may refuse, and how a run goes on: a compile that fails (run.compile=auto:
the step stays eager; true: one line), a step that syncs with the host (found in the last warm-up
step, before any capture), a capture that fails (the compiled step kept unless compile failed).
Each failing step is undone before it is rerun, so the run equals one that never tried."""
import io
import json

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from act import graphs
from act.errors import ActError
from act.method.registry import spec_of
from act.run.loop import loop, train_epoch
from act.step import engine
from support.tiny import tiny_run, without_timing
from test_cuda_graph import FailingCapture


class CompileFails:
    """torch.compile as a machine without a C compiler gives it: the first call runs the forward
    (bank and statistics already changed, as a lazily compiled backward leaves them) and then
    raises; `compiled` counts the calls that compiled fine."""

    def __init__(self, fails: bool):
        self.fails, self.calls = fails, 0

    def __call__(self, fn, **kwargs):
        def compiled(*args):
            self.calls += 1
            out = fn(*args)
            if self.fails:
                raise RuntimeError("InductorError: CalledProcessError: Command '['gcc', ...]' returned exit status 1")
            return out
        return compiled


def stepped(tmp_path, monkeypatch, compile_fails: bool, strict: bool = False, cuda_graph: bool = False,
            graph_type=graphs.EagerGraph, losses=None):
    fake = CompileFails(compile_fails)
    monkeypatch.setattr(torch, "compile", fake)
    run = tiny_run(tmp_path, True, "run.progress=false")
    run.steps = engine.build_steps(run.ctx, losses or spec_of("act").losses, 64, compile=True, static_inputs=True,
                                   cuda_graph=cuda_graph, graphs=graph_type, compile_strict=strict)
    return run, fake


def test_a_failed_compile_under_auto_leaves_the_step_eager_says_why_and_changes_no_number(tmp_path, monkeypatch):
    (tmp_path / "plain").mkdir()
    plain = tiny_run(tmp_path / "plain", False)
    run, _ = stepped(tmp_path, monkeypatch, compile_fails=True)
    console = io.StringIO()
    summary = loop(run, console)
    expected = [without_timing(train_epoch(plain, epoch, False)) for epoch in range(3)]
    assert [without_timing(r) for r in run.history] == expected
    assert torch.equal(run.ctx.bank.count, plain.ctx.bank.count) and torch.equal(run.ctx.bank.ema, plain.ctx.bank.ema)
    lines = [line for line in console.getvalue().splitlines() if "torch.compile" in line]
    assert [line.split(":")[0] for line in lines] == ["the warmup step runs without torch.compile",
                                                      "the robust step runs without torch.compile"]
    assert "compiling it failed (RuntimeError: InductorError: CalledProcessError" in lines[0]
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["compiled"] == summary["compiled"]
    assert written["compiled"]["robust"].startswith("fell back: RuntimeError: InductorError")


def test_a_failed_compile_under_true_stops_the_run_with_one_line(tmp_path, monkeypatch):
    run, _ = stepped(tmp_path, monkeypatch, compile_fails=True, strict=True)
    with pytest.raises(ActError) as caught:
        train_epoch(run, 0, False)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("run.compile=true: compiling the warmup step failed")
    assert "run.compile=auto falls back to the eager step" in message


def test_a_capture_that_fails_keeps_the_compiled_step(tmp_path, monkeypatch):
    run, fake = stepped(tmp_path, monkeypatch, compile_fails=False, cuda_graph=True, graph_type=FailingCapture)
    train_epoch(run, 0, False)
    step = run.steps["warmup"]
    assert step.mode.startswith("fell back: RuntimeError: operation not permitted when stream is capturing")
    assert step.compile_mode == "compiled" and step.compiled is not step.eager
    calls = fake.calls
    train_epoch(run, 0, False)
    assert fake.calls == calls + 6  # every full batch of the epoch went through the compiled losses


def test_a_capture_that_fails_inside_compile_leaves_the_step_eager(tmp_path, monkeypatch):
    class CompileFailsUnderCapture(graphs.EagerGraph):
        def __init__(self, fn, stream):
            raise torch._dynamo.exc.TorchRuntimeError("cannot compile under capture")

    run, _ = stepped(tmp_path, monkeypatch, compile_fails=False, cuda_graph=True, graph_type=CompileFailsUnderCapture)
    train_epoch(run, 0, False)
    step = run.steps["warmup"]
    assert step.compiled is step.eager and step.compile_mode.startswith("fell back: TorchRuntimeError")


class SyncsRaise(TorchDispatchMode):
    """What set_sync_debug_mode("error") does on CUDA, on the CPU: an op that reads a value on
    the host (`.item()`, a tensor in an `if`) raises."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            raise RuntimeError("called a synchronizing CUDA operation")
        return func(*args, **(kwargs or {}))


def syncing_warmup(ctx, batch, totals):
    loss = engine.warmup_losses(ctx, batch, totals)
    if loss > 1e9:  # a Python branch on a tensor: the host waits for the device
        raise AssertionError("unreachable")
    return loss


def test_a_step_that_syncs_is_found_before_capture_undone_and_left_uncaptured(tmp_path, monkeypatch):
    (tmp_path / "plain").mkdir()
    plain = tiny_run(tmp_path / "plain", False)
    captures = []

    class Recorded(graphs.EagerGraph):
        def __init__(self, fn, stream):
            captures.append(fn)
            super().__init__(fn, stream)

    monkeypatch.setattr(engine, "no_host_sync", lambda device: SyncsRaise())
    run, _ = stepped(tmp_path, monkeypatch, compile_fails=False, cuda_graph=True, graph_type=Recorded,
                     losses={"warmup": syncing_warmup})
    a, b = train_epoch(run, 0, False), train_epoch(plain, 0, False)
    assert without_timing(a) == without_timing(b)  # the checked step was undone and trained again
    step = run.steps["warmup"]
    line = syncing_warmup.__code__.co_firstlineno + 2
    assert step.mode == ("fell back: the step makes the host wait for the device: RuntimeError: called a "
                         f"synchronizing CUDA operation (at test_fallbacks.py:{line} in syncing_warmup)")
    assert captures == [] and step.compile_mode == "compiled"


def test_under_cuda_graph_true_a_step_that_syncs_stops_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "no_host_sync", lambda device: SyncsRaise())
    run, _ = stepped(tmp_path, monkeypatch, compile_fails=False, cuda_graph=True, losses={"warmup": syncing_warmup})
    run.steps["warmup"].strict = True
    with pytest.raises(ActError) as caught:
        train_epoch(run, 0, False)
    assert str(caught.value).startswith("run.cuda_graph=true: capturing the warmup step failed (the step makes the "
                                        "host wait for the device: RuntimeError: called a synchronizing")


def test_import_of_the_config_needs_no_yaml_library():
    import subprocess
    import sys

    code = ("import sys; sys.modules['yaml'] = None; import act.config as c; "
            "cfg = c.override(c.Config(), ['data.name=digits', 'optim.epochs=3']); print(cfg.optim.epochs)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "3", run.stderr[-2000:]
