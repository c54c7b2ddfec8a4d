"""An epoch split between the processes of a DDP run (torchrun): which rank trains each sample.

Every rank draws the same permutation (`base.epoch_order`, seeded by (seed, epoch)) and walks
it in global batches of `batch_size * ranks` samples; rank r trains the r-th slice of
`batch_size` of each, so the union of the ranks' batches of one step is the batch one process
would train, and every index belongs to exactly one rank per epoch (the memory bank relies on
that: a row is read and written by its owner alone, act/step/distributed.py).

The last, partial global batch is split as evenly as possible, in parts of at least two
samples (batch norm cannot normalise one sample: one process skips such a batch too, act/run/loop.py);
ranks left without a part still run that step on an empty batch, so every rank runs the same
number of steps and meets every collective. Two corner cases leave a sample out of the epoch,
as one process leaves out a last batch of one: a last global batch of one sample, and an odd
last sample when each rank's batch is 2 (its part of 3 would not fit the rank's batch).
"""
from __future__ import annotations

import torch

OUT = -1  # the rank of a sample that sits the epoch out


def shard_positions(size: int, batch_size: int, ranks: int) -> torch.Tensor:
    """The rank that trains each position of an epoch's order (int64, `OUT` for none);
    `batch_size` is one rank's batch."""
    global_batch = batch_size * ranks
    full = size // global_batch * global_batch
    owners = torch.arange(full) % global_batch // batch_size
    rest = size - full
    parts = min(ranks, rest // 2)
    if not parts:
        rest = 0
    elif -(-rest // parts) > batch_size:
        rest -= 1  # only when batch_size == 2: parts of 2, not a part of 3
    last = torch.arange(rest) * parts // max(rest, 1)
    return torch.cat([owners, last, torch.full((size - full - rest,), OUT)])


def shard_order(order: torch.Tensor, batch_size: int, rank: int, ranks: int) -> torch.Tensor:
    """Rank `rank`'s part of the epoch `order`: cut in batches of `batch_size`, they are its steps."""
    if ranks == 1:
        return order
    return order[shard_positions(len(order), batch_size, ranks) == rank]


def shard_steps(size: int, batch_size: int, ranks: int) -> int:
    """Steps every rank runs per epoch (one process: the batches of the epoch)."""
    if ranks == 1:
        return -(-size // batch_size)
    used = int((shard_positions(size, batch_size, ranks) != OUT).sum())
    return -(-used // (batch_size * ranks))
