"""The capturable step (run.cuda_graph): proven on the CPU by running the CUDA code paths there.

`prepare` on `decide(cfg, cuda_paths=True)` builds what a GPU run uses: full batches copied into static
buffers, fused SGD reading 0-d device learning rates, autocast without its cache, one
statistics vector for the whole run. Run eagerly it must equal the plain CPU step bit for bit, and no op of
it may make the host wait for the device. The tests marked `cuda` capture and replay for real.
"""
import io
import json
from pathlib import Path

import pytest
import torch

from act import graphs
from act.errors import ActError
from act.method.registry import phase_losses, spec_of
from act.run.loop import loop, train_epoch
from act.step import engine
from benchmarks.recorder import OpRecorder
from support.tiny import tiny_config, tiny_run, without_timing

def test_the_capturable_step_equals_the_plain_step_bit_for_bit(tmp_path):
    plain, capturable = tiny_run(tmp_path, False), tiny_run(tmp_path, True)
    assert capturable.steps["robust"].static_inputs and not plain.steps["robust"].static_inputs
    totals = capturable.stats.totals
    for epoch in range(3):  # one warm-up epoch, two robust ones
        assert without_timing(train_epoch(plain, epoch, False)) == without_timing(train_epoch(capturable, epoch, False))
    assert capturable.stats.totals is totals  # one statistics vector for the whole run
    for name in ("rtm", "ntm"):
        a, b = getattr(plain.ctx, name).state_dict(), getattr(capturable.ctx, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert torch.equal(plain.ctx.bank.count, capturable.ctx.bank.count)
    assert torch.equal(plain.ctx.bank.ema, capturable.ctx.bank.ema)


@pytest.mark.parametrize("method,phase", [("act", "warmup"), ("act", "robust"), ("standard", "standard")])
def test_a_full_batch_step_has_no_host_sync(tmp_path, method, phase):
    run = tiny_run(tmp_path, True, f"method.name={method}")
    batches = run.pipeline.train_batches(1)
    engine.set_lrs(run.ctx, 0.01, 0.08)
    step = run.steps[phase]
    step(next(batches), run.stats)  # the first call allocates the static buffers and optimiser state
    with OpRecorder() as recorder:
        step(next(batches), run.stats)
    assert recorder.record.ops["aten._fused_sgd_"] == 2  # both updates inside the step
    assert dict(recorder.record.syncs) == {}


@pytest.mark.parametrize("phase", ["warmup", "robust", "standard"])
def test_each_phase_traces_as_one_graph(tmp_path, phase):
    run = tiny_run(tmp_path, True)
    batch = next(run.pipeline.train_batches(1))
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(phase_losses()[phase])(run.ctx, batch, run.stats.totals)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


def test_learning_rates_are_written_into_the_same_device_tensors(tmp_path):
    run = tiny_run(tmp_path, True)
    held = [g["lr"] for opt in (run.ctx.rtm_opt, run.ctx.ntm_opt) for g in opt.param_groups]
    engine.set_lrs(run.ctx, 0.25, 0.5)
    assert [g["lr"] for opt in (run.ctx.rtm_opt, run.ctx.ntm_opt) for g in opt.param_groups] == held  # same objects
    assert [t.item() for t in held] == [0.25, 0.5]


@pytest.mark.parametrize("held", [0.3, torch.tensor(0.3, device="meta")], ids=["float", "other-device"])
def test_a_learning_rate_not_on_the_parameters_device_becomes_a_tensor_there(tmp_path, held):
    run = tiny_run(tmp_path, False)
    run.ctx.rtm_opt.param_groups[0]["lr"] = held  # as an optimiser state loaded onto another device holds it
    engine.set_lrs(run.ctx, 0.125, 0.5)
    lr = run.ctx.rtm_opt.param_groups[0]["lr"]
    assert isinstance(lr, torch.Tensor) and lr.device.type == "cpu" and lr.item() == 0.125


class FakeCudaGraphApi:
    """torch.cuda's graph and stream calls, recorded: which stream each warm-up ran on, and the
    arguments of each capture."""

    def __init__(self, monkeypatch):
        self.entered, self.captures = [], []
        api = self

        class Stream:
            def __init__(self, device=None):
                self.device = device

            def wait_stream(self, other):
                pass

        class StreamContext:
            def __init__(self, stream):
                self.stream = stream

            def __enter__(self):
                api.entered.append(self.stream)

            def __exit__(self, *exc):
                return False

        class GraphContext:
            def __init__(self, graph, **kwargs):
                api.captures.append(kwargs)

            def __enter__(self):
                pass

            def __exit__(self, *exc):
                if api.invalidated:  # capture_end raising leaves the capture stream current, as torch does
                    api.invalidated = False
                    raise RuntimeError("operation failed due to a previous error during capture")
                return False

        class FakeGraph:
            def pool(self):
                return (0, 7)

        self.invalidated = False
        self.pool_calls, self.trivial = [], []

        monkeypatch.setattr(torch.cuda, "Stream", Stream)
        monkeypatch.setattr(torch.cuda, "stream", StreamContext)
        self.current = Stream()
        self.set_streams = []
        monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: self.current)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "set_stream", self.set_streams.append)
        monkeypatch.setattr(torch.cuda, "graph", GraphContext)
        monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
        for name in ("_cuda_endAllocateToPool", "_cuda_releasePool"):
            monkeypatch.setattr(torch._C, name, lambda device, pool, name=name: self.pool_calls.append((name, pool)),
                                raising=False)
        monkeypatch.setattr(graphs, "trivial_work", self.trivial.append)


def test_capture_is_thread_local_on_the_stream_its_warm_ups_ran_on(monkeypatch):
    api = FakeCudaGraphApi(monkeypatch)
    stream = graphs.CaptureStream(torch.device("cuda"))
    stream.run(lambda: None)  # a warm-up
    graph = graphs.Graph(lambda: "outputs", stream)
    assert api.entered == [stream.stream]
    assert api.captures == [{"stream": stream.stream, "capture_error_mode": "thread_local"}]
    assert graph.outputs == "outputs"


def break_capture():
    raise RuntimeError("CUDA error: operation not permitted when stream is capturing")  # the op's own error


def test_an_invalidated_capture_leaves_a_clean_process_and_names_its_first_cause(monkeypatch):
    api = FakeCudaGraphApi(monkeypatch)
    api.invalidated = True
    with pytest.raises(RuntimeError, match="during capture") as caught:
        graphs.Graph(break_capture, graphs.CaptureStream(torch.device("cuda")))
    assert api.set_streams == [api.current]  # the thread back on its stream
    assert api.pool_calls == [("_cuda_endAllocateToPool", (0, 7)), ("_cuda_releasePool", (0, 7))]
    assert len(api.captures) == 2 and api.trivial == [torch.device("cuda")]  # a trivial capture that succeeds
    line = break_capture.__code__.co_firstlineno + 1
    assert graphs.failure_text(caught.value) == ("RuntimeError: CUDA error: operation not permitted when stream is "
                                                 f"capturing (at test_cuda_graph.py:{line} in break_capture)")


def test_a_step_warms_up_and_captures_on_one_stream_of_its_own(tmp_path):
    run = tiny_run(tmp_path, True)
    seen = []

    class Recorded(graphs.EagerGraph):
        def __init__(self, fn, stream):
            seen.append(stream)
            super().__init__(fn, stream)

    steps = engine.build_steps(run.ctx, spec_of("act").losses, 64, cuda_graph=True, graphs=Recorded)
    run.steps = steps
    train_epoch(run, 0, False)
    warm = steps["warmup"]
    assert seen == [warm.stream] and steps["robust"].stream is not warm.stream
    assert warm.mode == "graph" and steps["robust"].mode.startswith("eager (not captured")


class FailingCapture(graphs.EagerGraph):
    def __init__(self, fn, stream):
        raise RuntimeError("operation not permitted when stream is capturing\nsecond line")


def graphed(tmp_path, graph_type, strict=False):
    run = tiny_run(tmp_path, True, "run.progress=false")
    run.steps = engine.build_steps(run.ctx, spec_of("act").losses, 64, cuda_graph=True, static_inputs=True,
                                   strict=strict, graphs=graph_type)
    return run


def test_graph_replay_walked_on_the_cpu_equals_the_plain_step(tmp_path):
    plain, replayed = tiny_run(tmp_path, False), graphed(tmp_path, graphs.EagerGraph)
    for epoch in range(3):
        assert without_timing(train_epoch(plain, epoch, False)) == without_timing(train_epoch(replayed, epoch, False))
    assert {phase: step.mode for phase, step in replayed.steps.items()} == {"warmup": "graph", "robust": "graph"}
    assert all(torch.equal(plain.ctx.rtm.state_dict()[k], v) for k, v in replayed.ctx.rtm.state_dict().items())


def test_a_failed_capture_falls_back_to_the_eager_step_and_says_so_once(tmp_path):
    plain, failed = tiny_run(tmp_path, False), graphed(tmp_path, FailingCapture)
    (tmp_path / "plain").mkdir()
    plain.dir = tmp_path / "plain"
    console = io.StringIO()
    summary = loop(failed, console)
    loop(plain, io.StringIO())
    lines = [line for line in console.getvalue().splitlines() if "capture failed" in line]
    why = ("RuntimeError: operation not permitted when stream is capturing "
           f"(at test_cuda_graph.py:{FailingCapture.__init__.__code__.co_firstlineno + 1} in __init__)")
    assert lines == [f"the warmup step runs eagerly: its CUDA-graph capture failed ({why})",
                     f"the robust step runs eagerly: its CUDA-graph capture failed ({why})"]
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["cuda_graph"]["robust"] == summary["cuda_graph"]["robust"] == f"fell back: {why}"
    assert written["compiled"] == {"warmup": "not compiled", "robust": "not compiled"}
    # capture runs nothing, so the batch it was given still trains: the run equals the plain one
    assert [without_timing(r) for r in failed.history] == [without_timing(r) for r in plain.history]


def test_a_failed_capture_under_cuda_graph_true_stops_with_one_line(tmp_path):
    run = graphed(tmp_path, FailingCapture, strict=True)
    with pytest.raises(ActError) as caught:
        train_epoch(run, 0, False)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("run.cuda_graph=true: capturing the warmup step failed")


def test_an_eager_graph_replays_a_function_that_returns_none_beside_tensors():
    calls = iter([torch.ones(2), torch.full((2,), 3.0)])
    graph = graphs.EagerGraph(lambda: (next(calls), None), graphs.CaptureStream(torch.device("cpu")))
    graph.replay()
    first = graph.outputs[0]
    graph.replay()  # copied into the first run's tensors; the None stays None
    assert graph.outputs[0] is first and first.tolist() == [3.0, 3.0] and graph.outputs[1] is None
