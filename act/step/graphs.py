"""CUDA graphs, captured the one way every part of act captures them (the step, the views).

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

from typing import Any, Callable

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
    Capture records without running: call `replay()` for the first real run."""

    def __init__(self, fn: Callable[[], Any], stream: CaptureStream):
        self.graph = torch.cuda.CUDAGraph()
        current = torch.cuda.current_stream(stream.stream.device)
        try:
            with torch.cuda.graph(self.graph, stream=stream.stream, capture_error_mode="thread_local"):
                self.outputs = fn()
        except BaseException:
            # When capture_end raises (an invalidated capture), torch.cuda.graph.__exit__ never leaves
            # the capture stream: put the thread back on its stream before the eager fallback runs.
            torch.cuda.set_stream(current)
            raise

    def replay(self) -> None:
        self.graph.replay()


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
            self.graph, self.fallback = capture(lambda: self.fn(*self.inputs), self.stream, self.graph_type,
                                                self.strict, f"the view pass {getattr(self.fn, '__name__', '')}")
            if self.fallback is not None:
                self.inputs = None
            return out
        for static, new in zip(tree_flatten(self.inputs)[0], tree_flatten(inputs)[0]):
            if static is not None:
                static.copy_(new, non_blocking=True)
        self.graph.replay()
        return tree_map(lambda t: None if t is None else t.clone(), self.graph.outputs)


def capture(fn: Callable[[], Any], stream: CaptureStream, graphs: GraphType, strict: bool,
            what: str) -> tuple["Graph | EagerGraph | None", str | None]:
    """(the graph of `fn`, None), or (None, why) when capture fails: the caller then runs `fn`
    eagerly. With `strict` (run.cuda_graph=true) a failure stops the run with one line instead."""
    try:
        return graphs(fn, stream), None
    except Exception as exc:  # noqa: BLE001 - any capture failure has the same remedy
        if strict:
            raise ActError(f"run.cuda_graph=true: capturing {what} failed ({failure_text(exc)}); "
                           f"run.cuda_graph=auto falls back to running it eagerly, false does not capture") from exc
        return None, failure_text(exc)


def passes_tried(passes: dict[str, Any]) -> dict[str, str]:
    """name -> mode of each `Replayed` pass of `passes` that captured or failed to (the others, plain
    functions or never given a full chunk, are left out)."""
    return {name: p.mode for name, p in passes.items() if isinstance(p, Replayed) and p.tried}


def failure_text(exc: BaseException) -> str:
    """One line saying why a capture failed (the first line of the error, its type when empty)."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__
