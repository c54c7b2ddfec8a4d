"""The batch a step's means are taken over: this process's batch, or under DDP the global batch.

The loss functions of act/step/engine.py ask one object for every batch-level quantity, so no
DDP code sits in them: `ctx.means(y)` gives `OneProcess` in one process (a mean is the plain
mean, the selection and the memorisation check see this batch) and `Ranks` under torchrun,
where one all-reduce per step sums what the global batch's decisions need
(docs/distributed.md). DDP averages the ranks' gradients, so a rank's share of a global mean is its sum times
the number of ranks over the global size: the gradients are then those of the global mean,
also for the uneven last batch and on a rank whose part of it is empty.
"""
from __future__ import annotations

from typing import Callable

import torch

from act.method import functions as M

Loss = Callable[[str], torch.Tensor]  # reduction ("mean" | "none") -> the loss


class OneProcess:
    """One process: every mean is the batch's own."""

    def mean(self, loss: Loss) -> torch.Tensor:
        return loss("mean")

    def select(self, rtm_pred: torch.Tensor, ntm_pred: torch.Tensor, y: torch.Tensor, tau: float,
               selection: str, mine: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(mining, sel): the memorisation check on this batch and the selection it switches."""
        mining = M.memorisation_check(rtm_pred, ntm_pred, y, tau)
        return mining, M.select(rtm_pred, ntm_pred, y, mining, selection, mine)

    def selected_loss(self, ce: torch.Tensor, sel: torch.Tensor, count: torch.Tensor, epoch: torch.Tensor,
                      reweight: bool) -> torch.Tensor:
        return M.selected_loss(ce, sel, count, epoch, reweight)


class Ranks:
    """Under DDP: means over the global batch; its size and counts summed once per step."""

    def __init__(self, ranks: int, all_sum: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor):
        self.ranks, self.all_sum, self.y = ranks, all_sum, y
        self.size: torch.Tensor | None = None  # the global batch's size, summed on first need
        self.selected: torch.Tensor | None = None  # the global selected count, set by `select`

    def mean(self, loss: Loss) -> torch.Tensor:
        if self.size is None:
            self.size = self.all_sum(self.y.new_full((1,), len(self.y)))[0]
        return loss("none").sum() * self.ranks / self.size

    def select(self, rtm_pred: torch.Tensor, ntm_pred: torch.Tensor, y: torch.Tensor, tau: float,
               selection: str, mine: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The check is a decision on the global batch, so every rank mines in the same steps: one
        all-reduce sums the size, both correct counts and the selected counts with and without
        mining (known before the check)."""
        mined = M.select(rtm_pred, ntm_pred, y, y.new_ones((), dtype=torch.bool), selection, mine)
        plain = M.select(rtm_pred, ntm_pred, y, y.new_zeros((), dtype=torch.bool), selection, mine)
        counts = self.all_sum(torch.stack([y.new_full((), len(y)), (rtm_pred == y).sum(), (ntm_pred == y).sum(),
                                           mined.sum(), plain.sum()]))
        mining = M.mining_from_counts(counts[1].float(), counts[2].float(), tau)
        self.size, self.selected = counts[0], torch.where(mining, counts[3], counts[4])
        return mining, torch.where(mining, mined, plain)

    def selected_loss(self, ce: torch.Tensor, sel: torch.Tensor, count: torch.Tensor, epoch: torch.Tensor,
                      reweight: bool) -> torch.Tensor:
        return M.selected_loss(ce, sel, count, epoch, reweight, self.selected) * self.ranks


def means(ranks: int, all_sum: Callable[[torch.Tensor], torch.Tensor] | None,
          y: torch.Tensor) -> OneProcess | Ranks:
    """The batch of this step's means (`y`: this rank's labels)."""
    return OneProcess() if all_sum is None else Ranks(ranks, all_sum, y)
