"""CUDA graphs, captured the one way every part of act captures them (the step, the views): here,
below both act/step/ and pipelines/, so that each imports it downward.

Rules of capture (torch/cuda/graphs.py and the CUDA graphs notes of PyTorch):
- `capture_error_mode="thread_local"`: the loaders' own threads (the reference pipeline's
  pin-memory thread, DALI's executor, FFCV's loader thread) keep making CUDA calls while the
  training thread captures. Under the default "global" mode any such call (the pin thread's
  next pinned allocation, once capture has emptied the pinned host cache) fails the capture.
- One dedicated stream per captured function (`CaptureStream`), for its warm-up runs and its
  capture alike: lazy initialisation (cuBLAS handles, cuDNN plans, autograd's streams) happens
  on the stream the graph is captured on.
- A function captured here reads and writes only tensors that outlive it (static buffers);
  what it returns lives in the graph's memory pool and is rewritten by every replay.

`Graph` is the CUDA graph; `EagerGraph` has the same interface and replays by running the
function again, which is how the CPU tests walk the graphed code paths (static buffers,
capture, replay, fallback) without a GPU.
"""
from __future__ import annotations

import contextlib
import sysconfig
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch.utils._pytree import tree_flatten, tree_map

from act.errors import ActError


class CaptureStream:
    """The dedicated stream of one captured function (None off CUDA: the code runs in place)."""

    def __init__(self, device: torch.device):
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def run(self, fn: Callable[[], Any]) -> Any:
        """`fn()` on this stream, ordered after and before the current stream's work."""
        if self.stream is None:
            return fn()
        current = torch.cuda.current_stream(self.stream.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            out = fn()
        current.wait_stream(self.stream)
        return out


class Graph:
    """`fn` captured as one CUDA graph on `stream`; `replay()` runs it on the current stream,
    after which `outputs` (what `fn` returned, in the graph's pool) hold the new values.
    Capture records without running: call `replay()` for the first real run.

    A capture invalidated inside `fn` (a host sync, a forbidden call) makes torch's capture_end
    raise a second, generic error, and raise it before it ends the allocator's capture pool
    (CUDAGraph.cpp `capture_end`); torch 2.11 also leaves the default CUDA generator in capture
    mode, so a later eager random draw raises. `recover` puts the process back as it was: the
    thread on its stream, the pool ended and released, and one trivial capture that succeeds
    (its capture_end takes the generators out of capture mode). The error raised is the
    first one (`fn`'s) in its chain: `failure_text` reports that one, which names the op that broke
    the capture."""

    def __init__(self, fn: Callable[[], Any], stream: CaptureStream):
        self.graph = torch.cuda.CUDAGraph()
        current = torch.cuda.current_stream(stream.stream.device)
        try:
            with torch.cuda.graph(self.graph, stream=stream.stream, capture_error_mode="thread_local"):
                self.outputs = fn()
        except BaseException:
            recover(self.graph, stream, current)
            raise

    def replay(self) -> None:
        self.graph.replay()


def recover(graph, stream: CaptureStream, current) -> None:
    """After a failed capture of `graph` on `stream`: the thread back on `current` (torch's
    graph.__exit__ never leaves the capture stream when capture_end raises), the graph's pool
    ended and released, and a trivial capture made that succeeds (see `Graph`)."""
    torch.cuda.set_stream(current)
    device = stream.stream.device
    index = device.index if device.index is not None else torch.cuda.current_device()
    pool = graph.pool()  # (int, int) in torch 2.11 and 2.14
    for name in ("_cuda_endAllocateToPool", "_cuda_releasePool"):  # both in torch 2.11 and 2.14
        call = getattr(torch._C, name, None)
        if call is not None:
            try:
                call(index, pool)
            except RuntimeError:
                pass  # a capture that failed before its pool began has none to end or release
    trivial = torch.cuda.CUDAGraph()
    with torch.cuda.graph(trivial, stream=stream.stream, capture_error_mode="thread_local"):
        trivial_work(device)


def trivial_work(device: torch.device) -> None:
    """What the trivial capture of `recover` records: one small kernel."""
    torch.zeros(1, device=device).add_(1)


def no_host_sync(device: torch.device) -> contextlib.AbstractContextManager:
    """Within it, on CUDA, an op that makes the host wait for the device raises
    (torch.cuda.set_sync_debug_mode("error")): a step that would break its capture fails before
    any capture begins, where it can still be undone. A no-op elsewhere."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return sync_debug_mode("error")


@contextlib.contextmanager
def sync_debug_mode(mode: str):
    before = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(before)


class EagerGraph:
    """The interface of `Graph` without CUDA: `replay()` runs `fn` and copies its results into
    the tensors of the first run, so a caller reading `outputs` sees static tensors as with a
    real graph. Capture runs nothing, as a real capture executes nothing."""

    def __init__(self, fn: Callable[[], Any], stream: CaptureStream):
        self.fn, self.outputs = fn, None

    def replay(self) -> None:
        out = self.fn()
        if self.outputs is None:
            self.outputs = out
            return
        for static, new in zip(tree_flatten(self.outputs)[0], tree_flatten(out)[0]):
            if static is not None:  # a pass that builds no strong view returns (weak, None)
                static.copy_(new)


GraphType = Callable[[Callable[[], Any], CaptureStream], "Graph | EagerGraph"]


def graph_type(device: torch.device) -> GraphType:
    """`Graph` on CUDA, `EagerGraph` elsewhere (CPU tests of the graphed paths)."""
    return Graph if device.type == "cuda" else EagerGraph


def shapes(tree) -> list:
    """The shape and dtype of every tensor leaf (None where a leaf is None): what a graph fixes."""
    return [None if t is None else (t.shape, t.dtype) for t in tree_flatten(tree)[0]]


class Replayed:
    """`fn(*inputs)`, a static-shape function of tensors with no side effects (a view's apply
    pass), captured as one graph at its first call and replayed for every later call whose
    inputs have the same shapes: a call copies its inputs into the graph's static buffers,
    replays, and returns copies of the outputs (the caller may keep them while the next call
    replays). Other shapes (an epoch's last, smaller chunk) run `fn` eagerly. The first call
    runs `fn` on the capture stream (lazy initialisation happens there) and returns that result.
    A capture that raises leaves `fn` eager for good; `fallback` says why."""

    def __init__(self, fn: Callable[..., Any], device: torch.device, graphs: GraphType | None = None,
                 strict: bool = False):
        self.fn, self.graph_type, self.strict = fn, graphs or graph_type(device), strict
        self.stream = CaptureStream(device)
        self.graph, self.inputs, self.fallback = None, None, None

    @property
    def mode(self) -> str:
        if self.fallback is not None:
            return f"fell back: {self.fallback}"
        return "graph" if self.graph is not None else "eager (not captured: no full chunk yet)"

    @property
    def tried(self) -> bool:
        """Whether a capture was made or failed (a full chunk came by)."""
        return self.graph is not None or self.fallback is not None

    def __call__(self, *inputs) -> Any:
        if self.fallback is not None or (self.graph is not None and shapes(inputs) != shapes(self.inputs)):
            return self.fn(*inputs)
        if self.graph is None:
            out = self.stream.run(lambda: self.fn(*inputs))
            self.inputs = tree_map(lambda t: None if t is None else t.clone(), inputs)
            self.graph, failure = capture(lambda: self.fn(*self.inputs), self.stream, self.graph_type,
                                          self.strict, f"the view pass {getattr(self.fn, '__name__', '')}")
            if failure is not None:
                self.fallback, self.inputs = failure_text(failure), None
            return out
        for static, new in zip(tree_flatten(self.inputs)[0], tree_flatten(inputs)[0]):
            if static is not None:
                static.copy_(new, non_blocking=True)
        self.graph.replay()
        return tree_map(lambda t: None if t is None else t.clone(), self.graph.outputs)


def capture(fn: Callable[[], Any], stream: CaptureStream, graphs: GraphType, strict: bool,
            what: str) -> tuple["Graph | EagerGraph | None", BaseException | None]:
    """(the graph of `fn`, None), or (None, the error) when capture fails: the caller then runs
    `fn` eagerly. With `strict` (run.cuda_graph=true) a failure stops the run with one line instead."""
    try:
        return graphs(fn, stream), None
    except Exception as exc:  # noqa: BLE001 - any capture failure has the same remedy
        if strict:
            raise strict_capture_error(what, failure_text(exc)) from exc
        return None, exc


def strict_capture_error(what: str, why: str) -> ActError:
    """The one line that stops a run.cuda_graph=true run whose capture of `what` failed for `why`."""
    return ActError(f"run.cuda_graph=true: capturing {what} failed ({why}); "
                    f"run.cuda_graph=auto falls back to running it eagerly, false does not capture")


def passes_tried(passes: dict[str, Any]) -> dict[str, str]:
    """name -> mode of each `Replayed` pass of `passes` that captured or failed to (the others, plain
    functions or never given a full chunk, are left out)."""
    return {name: p.mode for name, p in passes.items() if isinstance(p, Replayed) and p.tried}


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then the error it was raised from or while handling, and so on down (not past a
    `raise ... from None`, nor round a cycle)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ if exc.__cause__ is not None else None if exc.__suppress_context__ else exc.__context__


def first_cause(exc: BaseException) -> BaseException:
    """The error at the bottom of `exc`'s chain: the one that happened first (torch wraps a capture's
    or a compile's own error in later, generic ones)."""
    *_, first = chain(exc)
    return first


TORCH_DIR = Path(torch.__file__).resolve().parent
STDLIB_DIR = Path(sysconfig.get_paths()["stdlib"]).resolve()
DISPATCH_HOOKS = ("__torch_dispatch__", "__torch_function__")


def where(exc: BaseException) -> str | None:
    """`file.py:line in function` of the last frame of `exc`'s traceback outside torch, Python's own
    library and torch's dispatch hooks (a mode's `__torch_dispatch__`): the line that called the op
    which failed."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = Path(frame.filename).resolve()
        outside = not (path.is_relative_to(TORCH_DIR) or path.is_relative_to(STDLIB_DIR))
        if outside and frame.name not in DISPATCH_HOOKS:
            return f"{path.name}:{frame.lineno} in {frame.name}"
    return None


def failure_text(exc: BaseException) -> str:
    """One line saying why something failed: the first cause of `exc` (its first line, or its type
    when empty), and where in our code the failing op was called."""
    root = first_cause(exc)
    first = next((line.strip() for line in str(root).splitlines() if line.strip()), "")
    text = f"{type(root).__name__}: {first}"[:300] if first else type(root).__name__
    place = where(root)
    return f"{text} (at {place})" if place else text


def from_compile(exc: BaseException) -> bool:
    """Whether `exc` came out of torch.compile (dynamo, AOT autograd, inductor and its compilers)."""
    return any(type(e).__module__.startswith(("torch._dynamo", "torch._inductor", "torch._functorch"))
               for e in chain(exc))
