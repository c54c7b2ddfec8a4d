"""The strong-view policies as batched tensor computations (ACT_SPEC.md "Augmentation").

- `autoaugment_cifar10`: the CIFAR-10 policy of pipelines/autoaugment_pil.py: the same 25
  sub-policies, bins, signs (none for rotate) and resampling (bicubic shears).
- `rand_augment`: the Web/Food strong view of pipelines/pil_ops.py: `n` ops drawn uniformly
  (with replacement) from 15, each applied with probability `p` at a bin drawn uniformly
  from 1..max_level-1, with the public code's tables: the AutoAugment bins for the 14 shared
  ops (bicubic shears, unsigned rotation) and a cutout of the table's side for the bin,
  filled with CUTOUT_FILL, at a uniform integer centre.
Both read the ops, bins, signs, offsets, the CIFAR-10 policy and RandAugment's ops from
pipelines/augment_table.py, as the PIL reference does.

Each policy is a draw then an apply. `draw_*` draws every random number of the batch first,
eagerly, from the generator passed in and for the full batch (so the stream depends neither on
which samples fire nor on the device path), and turns them into `slot.Draws` (per slot and
sample: op, parameter, cutout box) through tables built once per device. `slot.apply_draws`
applies them: `static=True` is one static-shape function of the images and the draws (what a
GPU runs, and what torch.compile and CUDA graphs take), `static=False` computes only the
picked samples (the CPU's default); `static=None` chooses by device (masked.use_static).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch

from pipelines import augment_table
from pipelines.augment_table import BINS, CIFAR10_POLICY, RAND_AUGMENT_ORDER
from pipelines.ops.slot import INDEX, NONE, OPS, Draws, apply_draws, apply_static


@lru_cache(maxsize=None)
def op_tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per op of OPS: its magnitude per bin (len(OPS) x BINS; cutout's is its side in pixels),
    whether a policy draws its sign, and its parameter's offset (enhance ops take 1 + m), from
    the table. Built once per device: copying lists to a GPU blocks the host, which a batch must not do."""
    specs = [augment_table.OPS[name] for name in OPS]
    magnitude = torch.tensor([[float(v) for v in spec.magnitude] for spec in specs], dtype=torch.float64,
                             device=device)
    signed = torch.tensor([spec.random_sign for spec in specs], device=device)
    offset = torch.tensor([spec.offset for spec in specs], dtype=torch.float64, device=device)
    return magnitude, signed, offset


def op_value(op: torch.Tensor, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """N float64: each op's parameter at its bin, signed where the policy draws a sign (the op's
    argument: shear amount, translation fraction, degrees, 1 + m for enhance ops, cutout's side)."""
    magnitude, signed, offset = op_tables(op.device)
    return offset[op] + magnitude[op, level] * torch.where(signed[op], sign, 1.0)


def random_sign(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.where(torch.rand(n, device=device, generator=generator) < 0.5, 1.0, -1.0).double()


@lru_cache(maxsize=None)
def policy_table(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sub-policy and stage (25 x 2): probability, op (index into OPS), bin."""
    stages = [[(s[0], s[1], s[2]), (s[3], s[4], s[5])] for s in CIFAR10_POLICY]
    prob = torch.tensor([[p for p, _, _ in row] for row in stages], dtype=torch.float64, device=device)
    op = torch.tensor([[INDEX[name] for _, name, _ in row] for row in stages], device=device)
    level = torch.tensor([[b for _, _, b in row] for row in stages], device=device)
    return prob, op, level


def draw_autoaugment(n: int, generator: torch.Generator, device: torch.device) -> tuple[torch.Tensor, Draws]:
    """Each sample's sub-policy (uniform over 25, returned for the record) and its two slots
    (a coin with the stage's p, then a sign)."""
    prob, op, level = policy_table(device)
    sub = torch.randint(0, len(CIFAR10_POLICY), (n,), device=device, generator=generator)
    ops, values = [], []
    for stage in range(2):
        fire = torch.rand(n, device=device, generator=generator, dtype=torch.float64) < prob[sub, stage]
        sign = random_sign(n, generator, device)
        ops.append(torch.where(fire, op[sub, stage], NONE))
        values.append(op_value(op[sub, stage], level[sub, stage], sign))
    return sub, Draws(op=torch.stack(ops), value=torch.stack(values), box=None)


def autoaugment_draws(images: torch.Tensor, generator: torch.Generator) -> Draws:
    return draw_autoaugment(len(images), generator, images.device)[1]


def autoaugment_cifar10(images: torch.Tensor, generator: torch.Generator, static: bool | None = None) -> torch.Tensor:
    """AutoAugment's CIFAR-10 policy, each image its own sub-policy, coins and signs (uint8 in and out)."""
    return apply_draws(images, autoaugment_draws(images, generator), static)


@lru_cache(maxsize=None)
def rand_augment_ops(device: torch.device) -> torch.Tensor:
    """15: RandAugment's op index (the batched draw's order) -> index into OPS."""
    return torch.tensor([INDEX[name] for name in RAND_AUGMENT_ORDER], device=device)


def draw_rand_augment(n: int, height: int, width: int, generator: torch.Generator, device: torch.device,
                      n_ops: int = 2, p: float = 0.5, max_level: int = BINS) -> tuple[torch.Tensor, Draws]:
    """`n_ops` slots: op uniform over 15, coin with p, level uniform over 1..max_level-1, sign,
    cutout centre (x, y). Returns the levels (n_ops x N, for the record) and the draws."""
    to_ops = rand_augment_ops(device)
    levels, ops, values, boxes = [], [], [], []
    for _ in range(n_ops):
        op = to_ops[torch.randint(0, len(RAND_AUGMENT_ORDER), (n,), device=device, generator=generator)]
        fire = torch.rand(n, device=device, generator=generator) < p
        level = torch.randint(1, max_level, (n,), device=device, generator=generator)
        sign = random_sign(n, generator, device)
        centre = torch.stack([torch.randint(0, width, (n,), device=device, generator=generator),
                              torch.randint(0, height, (n,), device=device, generator=generator)], dim=1)
        value = op_value(op, level, sign)
        levels.append(level)
        ops.append(torch.where(fire, op, NONE))
        values.append(value)
        boxes.append(torch.cat([value[:, None], centre.double()], dim=1))  # cutout's value is its side
    return torch.stack(levels), Draws(op=torch.stack(ops), value=torch.stack(values), box=torch.stack(boxes))


def rand_augment_draws(images: torch.Tensor, generator: torch.Generator, *, n: int = 2, p: float = 0.5,
                       max_level: int = BINS) -> Draws:
    return draw_rand_augment(len(images), *images.shape[-2:], generator, images.device, n, p, max_level)[1]


def rand_augment(images: torch.Tensor, generator: torch.Generator, static: bool | None = None, *, n: int = 2,
                 p: float = 0.5, max_level: int = BINS) -> torch.Tensor:
    """RandAugment as the Web/Food strong view, per sample (uint8 in and out)."""
    return apply_draws(images, rand_augment_draws(images, generator, n=n, p=p, max_level=max_level), static)


# The strong views by name: `view(images, generator, static=None) -> images` (static=True forces
# the static path on any device), and each view's eager draw, `DRAWS[view](images, generator)`.
POLICIES: dict[str, Callable[..., torch.Tensor]] = {
    "autoaugment_cifar10": autoaugment_cifar10, "rand_augment": rand_augment,
}
DRAWS: dict[Callable[..., torch.Tensor], Callable[[torch.Tensor, torch.Generator], Draws]] = {
    autoaugment_cifar10: autoaugment_draws, rand_augment: rand_augment_draws,
}


def static_graph_breaks(view: Callable[..., torch.Tensor], images: torch.Tensor) -> int:
    """Graph breaks `torch._dynamo.explain` finds in the static apply of `view`'s draws for `images`."""
    draws = DRAWS[view](images, torch.Generator(images.device).manual_seed(0))
    return torch._dynamo.explain(apply_static)(images, draws).graph_break_count
