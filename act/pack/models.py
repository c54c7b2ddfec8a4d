"""The grouped twin of K models of one architecture: K runs' networks as one network.

`pack(models)` builds a network that runs the K models at once, one launch per layer for all
of them: each convolution a grouped convolution (groups = K x its own groups), each batch norm
one batch norm over K x C channels (its statistics per channel, so per run), each linear layer
one batched matrix product. It holds exactly the K models' weights and buffers, so a run in a
pack starts from the weights it would have alone; `unpack(packed, k)` gives run k's state dict
back in the plain model's layout.

Layout: batch first, runs next. The input is the K runs' batches concatenated along channels,
(B, K*C, H, W) (`stack_images`); inside, run k owns the k-th block of every channel dimension;
the logits are (B, K, classes). The twin runs the plain model's own `forward` on its packed
layers (only ResNet-32's shortcut, which pads channels, has a twin of its own), so the two
cannot drift apart: tests/test_pack.py proves every twin at K = 1 bitwise equal to its model.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from act.errors import ActError
from act.models.resnet32 import BasicBlock, ResNet32
from act.models.sevencnn import SevenCNN
from act.models.tinycnn import TinyCNN

PACKABLE = (SevenCNN, ResNet32, TinyCNN)
PACKABLE_NAMES = "sevencnn, resnet32, tinycnn"
STATELESS = (nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Identity, nn.Flatten)
PREFIX = "net."  # the twin's keys are the plain model's under this prefix


class PackedLinear(nn.Module):
    """K linear layers as one batched matrix product on (B, K*in) -> (B, K*out).

    The weight is the K weights stacked, (K*out, in), as every packed tensor is K blocks along
    its first dimension (what `unpack` slices)."""

    def __init__(self, linears: list[nn.Linear]):
        super().__init__()
        if linears[0].bias is None:
            raise ActError("runs can be packed only with models whose linear layers have a bias")
        self.runs, self.out_features = len(linears), linears[0].out_features
        self.weight = nn.Parameter(torch.cat([m.weight.detach() for m in linears]))
        self.bias = nn.Parameter(torch.cat([m.bias.detach() for m in linears]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        runs_first = x.view(batch, self.runs, -1).transpose(0, 1)  # (K, B, in)
        out = BatchedLinear.apply(runs_first, self.weight.view(self.runs, self.out_features, -1),
                                  self.bias.view(self.runs, -1))
        return out.transpose(0, 1).reshape(batch, -1)


class BatchedLinear(torch.autograd.Function):
    """x (K, B, in), w (K, out, in), b (K, out) -> x w^T + b, (K, B, out).

    Its backward takes the operands in the order linear's (addmm's) backward takes them: the
    weight's gradient as grad^T x, not (x^T grad)^T as bmm's own backward does. The BLAS rounds
    the two differently, so only this order gives a twin bitwise equal to its model at K = 1."""

    @staticmethod
    def forward(x, w, b):
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1])

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        x, w = x.to(grad.dtype), w.to(grad.dtype)  # under autocast the forward ran in grad's dtype
        return torch.bmm(grad, w), torch.bmm(grad.transpose(1, 2), x), grad.sum(1)


class PackedBasicBlock(BasicBlock):
    """ResNet-32's basic block over K runs: its option-A shortcut pads each run's channels."""

    def __init__(self, blocks: list[BasicBlock]):
        nn.Module.__init__(self)
        for name in ("conv1", "bn1", "conv2", "bn2"):
            setattr(self, name, pack_module([getattr(b, name) for b in blocks]))
        self.pad, self.stride, self.runs = blocks[0].pad, blocks[0].stride, len(blocks)

    def shortcut(self, x):
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, ::self.stride, ::self.stride].unflatten(1, (self.runs, -1))
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2)).flatten(1, 2)


class Packed(nn.Module):
    """The twin of K models; `forward` takes (B, K*C, H, W) and gives logits (B, K, classes)."""

    def __init__(self, net: nn.Module, runs: int):
        super().__init__()
        self.net, self.runs = net, runs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).unflatten(1, (self.runs, -1))


def pack(models: list[nn.Module]) -> Packed:
    """The grouped twin of `models` (K >= 1 of one architecture and shape), holding their weights
    and buffers; it lives where they live, in their dtype."""
    first = models[0]
    if not isinstance(first, PACKABLE) or any(type(m) is not type(first) for m in models):
        names = sorted({type(m).__name__ for m in models})
        raise ActError(f"runs can be packed only with model.name one of {PACKABLE_NAMES}; "
                       f"these are {', '.join(names)}")
    states = [m.state_dict() for m in models]
    if any({k: v.shape for k, v in s.items()} != {k: v.shape for k, v in states[0].items()} for s in states):
        raise ActError("runs in one pack need models of one shape (the same classes, channels and image size)")
    twin = Packed(pack_module(models), len(models))
    twin.load_state_dict({PREFIX + k: stacked([s[k] for s in states], k) for k in states[0]})
    return twin


def unpack(packed: Packed, k: int) -> dict[str, torch.Tensor]:
    """Run k's state dict, in the plain model's layout (its keys, its shapes), as copies."""
    return {key.removeprefix(PREFIX): (t.unflatten(0, (packed.runs, -1))[k] if t.dim() else t).clone()
            for key, t in packed.state_dict().items()}


def stacked(tensors: list[torch.Tensor], key: str) -> torch.Tensor:
    """K runs' tensors of one key as the twin holds them: K blocks along the first dimension; a
    0-d buffer (batch norm's step counter) is one for the pack and must agree."""
    if tensors[0].dim():
        return torch.cat(tensors)
    if any(not torch.equal(t, tensors[0]) for t in tensors):
        raise ValueError(f"{key} differs between the runs of a pack; they train in step")
    return tensors[0]


def pack_module(modules: list[nn.Module]) -> nn.Module:
    """The twin of one layer (or container) of the K models."""
    first, runs = modules[0], len(modules)
    if isinstance(first, nn.Conv2d):
        return packed_conv(modules)
    if isinstance(first, nn.modules.batchnorm._BatchNorm):
        return packed_batch_norm(modules)
    if isinstance(first, nn.Linear):
        return PackedLinear(modules)
    if isinstance(first, BasicBlock):
        return PackedBasicBlock(modules)
    if isinstance(first, STATELESS):
        return copy.deepcopy(first)
    if isinstance(first, nn.Sequential):
        return nn.Sequential(*(pack_module([m[i] for m in modules]) for i in range(len(first))))
    if isinstance(first, PACKABLE) and not first._parameters and not first._buffers:
        return same_forward(first, {name: pack_module([m.get_submodule(name) for m in modules])
                                    for name in first._modules})
    raise ActError(f"a {type(first).__name__} layer cannot be packed ({runs} runs); "
                   f"runs can be packed only with model.name one of {PACKABLE_NAMES}")


def same_forward(first: nn.Module, children: dict[str, nn.Module]) -> nn.Module:
    """A module of `first`'s class, so its own `forward`, whose layers are `children`."""
    twin = copy.copy(first)  # a shallow copy shares the module dicts: give it its own
    twin._modules = dict(children)
    twin._parameters, twin._buffers = {}, {}
    return twin


def packed_conv(convs: list[nn.Conv2d]) -> nn.Conv2d:
    c, runs = convs[0], len(convs)
    twin = nn.Conv2d(c.in_channels * runs, c.out_channels * runs, c.kernel_size, c.stride, c.padding, c.dilation,
                     c.groups * runs, c.bias is not None, c.padding_mode, device=c.weight.device, dtype=c.weight.dtype)
    # the plain weights' memory format (tinycnn's are channels_last): it picks the convolution's kernel
    twin.weight.data = twin.weight.data.contiguous(memory_format=memory_format(c.weight))
    return twin


def packed_batch_norm(bns: list[nn.modules.batchnorm._BatchNorm]) -> nn.Module:
    b = bns[0]
    if any((m.eps, m.momentum, m.affine, m.track_running_stats) != (b.eps, b.momentum, b.affine, b.track_running_stats)
           for m in bns):
        raise ActError("runs in one pack need the same batch-norm settings")
    device, dtype = (b.weight.device, b.weight.dtype) if b.affine else (b.running_mean.device, b.running_mean.dtype)
    return type(b)(b.num_features * len(bns), b.eps, b.momentum, b.affine, b.track_running_stats,
                   device=device, dtype=dtype)


def stack_images(images: list[torch.Tensor]) -> torch.Tensor:
    """K runs' image batches (B, C, H, W) as the twin's input (B, K*C, H, W), in the memory
    format of the first."""
    return torch.cat(images, dim=1).contiguous(memory_format=memory_format(images[0]))


def memory_format(t: torch.Tensor) -> torch.memory_format:
    """channels_last for a 4-d tensor laid out so (and not also contiguous), else contiguous."""
    last = t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
    return torch.channels_last if last else torch.contiguous_format
