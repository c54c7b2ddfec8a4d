"""Record every aten op a piece of code runs: which ops, how many would sync the host with the
device, how many produce float64, and how many bytes they read and write.

Used on the CPU with the CUDA code paths forced on (the tests and `benchmarks.gpu_proxy`), so a
host sync or a blocking copy is seen without a GPU:
- sync ops: reading a value to the host (`_local_scalar_dense`: `.item()`, `.tolist()`, `if t:`),
  ops whose output shape depends on values (`nonzero`, `masked_select`, boolean indexing,
  `unique`, ...), and tensors built from Python data (`lift_fresh`: `torch.tensor([...])`,
  which on a GPU is a blocking host-to-device copy).
- bytes: for each op, the bytes of its tensor inputs plus its tensor outputs; a proxy for
  memory traffic (a fused kernel would do less, an op reading a view reads only the view).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

SYNC_OPS = frozenset({
    "aten._local_scalar_dense", "aten.nonzero", "aten.nonzero_static", "aten.masked_select", "aten.unique",
    "aten._unique", "aten._unique2", "aten.unique_dim", "aten.unique_consecutive", "aten.is_nonzero",
    "aten.equal", "aten.allclose", "aten.repeat_interleave", "aten.lift_fresh", "aten.lift_fresh_copy",
    "aten._assert_async", "aten.item",
})
# Views and metadata ops move no data.
NO_TRAFFIC = frozenset({
    "aten.view", "aten._unsafe_view", "aten.expand", "aten.permute", "aten.t", "aten.transpose",
    "aten.unsqueeze", "aten.squeeze", "aten.select", "aten.slice", "aten.as_strided", "aten.alias",
    "aten.detach", "aten.split", "aten.chunk", "aten.unbind", "aten.empty", "aten.empty_strided",
    "aten.empty_like", "aten.split_with_sizes", "aten.lift_fresh", "aten._local_scalar_dense",
})


def op_name(func) -> str:
    """'aten.add_.Tensor' -> 'aten.add_' (the overload dropped)."""
    return f"{func.namespace}.{func._opname}"


def _tensors(tree) -> list[torch.Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


@dataclass
class Record:
    ops: Counter = field(default_factory=Counter)
    syncs: Counter = field(default_factory=Counter)
    float64_ops: int = 0
    bytes: int = 0
    image_ops: int = 0  # ops that write a batch of images (a 4-d output): what building a view costs
    shapes: list = field(default_factory=list)  # (op, output shapes) in order: static shapes repeat exactly

    @property
    def total_ops(self) -> int:
        return sum(self.ops.values())

    @property
    def total_syncs(self) -> int:
        return sum(self.syncs.values())


class OpRecorder(TorchDispatchMode):
    """`with OpRecorder() as rec: ...`; then `rec.record` holds the counts."""

    def __init__(self):
        super().__init__()
        self.record = Record()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = op_name(func)
        rec = self.record
        rec.ops[name] += 1
        if name in SYNC_OPS or (name == "aten.index" and any(t.dtype == torch.bool for t in _tensors(args[1:]))):
            rec.syncs[name] += 1
        outputs = _tensors(out)
        if any(t.dtype == torch.float64 for t in outputs):
            rec.float64_ops += 1
        if any(t.dim() == 4 for t in outputs) and name not in NO_TRAFFIC:
            rec.image_ops += 1
        rec.shapes.append((name, tuple(tuple(t.shape) for t in outputs)))
        if name not in NO_TRAFFIC:
            rec.bytes += sum(t.numel() * t.element_size() for t in _tensors((args, kwargs)) + outputs)
        return out


class CopyRecorder(TorchFunctionMode):
    """Copies to a device that a piece of code asks for (`tensor.to(device)`, `.cuda()`,
    `torch.as_tensor(data, device=...)`), and how many would block the host on a GPU: a `.to`
    without `non_blocking=True`, or a tensor made on a device from Python or numpy data. Seen at
    the Python level, so it counts on the CPU the copies a GPU run makes (the CPU's `.to(cpu)`
    dispatches nothing). A copy from pageable memory blocks even with non_blocking=True: the
    loaders hand over pinned memory on CUDA (pipelines/base.py `to_device`)."""

    def __init__(self):
        super().__init__()
        self.copies = self.blocking = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.to, torch.Tensor.cuda) and names_device(func, args, kwargs):
            self.copies += 1
            self.blocking += not kwargs.get("non_blocking", False)
        elif func in (torch.as_tensor, torch.tensor) and kwargs.get("device") is not None \
                and not isinstance(args[0], torch.Tensor):
            self.copies += 1
            self.blocking += 1
        return func(*args, **kwargs)


def names_device(func, args, kwargs) -> bool:
    """Whether a `.to`/`.cuda` call moves data to a device (not a dtype or memory-format change)."""
    if func is torch.Tensor.cuda or "device" in kwargs:
        return True
    return any(isinstance(a, (torch.device, str)) or (isinstance(a, torch.Tensor)) for a in args[1:])
