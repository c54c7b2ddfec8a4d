"""ACT (ACT_SPEC.md) as functions on tensors: selection, mining, the memory bank, the losses.

Nothing here synchronises with the host: no `.item()`, no `.cpu()`, no Python branch on a
tensor value. The memorisation check is a boolean tensor that masks the mining term, and
means over selected samples are masked sums divided by a clamped count. act/step/engine.py calls
these functions inside one step; this module imports only torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

SELECT_WEIGHT = 0.8  # L0 = 0.8 * L_sel + 0.2 * L_cr
EMA_MOMENTUM = 0.8  # ema_new = 0.8 * ema + 0.2 * p0


@dataclass
class Bank:
    """Per-sample state, length N = training-set size, kept on the training device.

    `count[i]`: times sample i was used (every warm-up epoch) or selected (robust phase).
    `ema[i]`: EMA of the RTM's softmax for sample i, initialised to the one-hot noisy label.
    """

    count: torch.Tensor  # int64 (N,)
    ema: torch.Tensor  # float32 (N, C)

    @classmethod
    def create(cls, noisy: torch.Tensor, num_classes: int) -> "Bank":
        count = torch.zeros(len(noisy), dtype=torch.int64, device=noisy.device)
        ema = F.one_hot(noisy, num_classes).float()
        return cls(count=count, ema=ema)

    def state_dict(self) -> dict:
        return {"count": self.count, "ema": self.ema}

    def load_state_dict(self, state: dict) -> None:
        self.count.copy_(state["count"])
        self.ema.copy_(state["ema"])


def conf_penalty(logits: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """mean_batch(sum_c p_c log p_c), p = softmax(logits.clamp(min=1e-12)); `reduction="none"`:
    the per-sample terms (a DDP rank's share of the global batch's mean, act/step/engine.py).

    The clamp on the logits (not the probabilities) is the public code's quirk, kept.
    """
    logp = F.log_softmax(logits.clamp(min=1e-12), dim=1)
    per_sample = (logp.exp() * logp).sum(dim=1)
    return per_sample.mean() if reduction == "mean" else per_sample


def memorisation_check(rtm_pred: torch.Tensor, ntm_pred: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    """The label-memorisation check: mining = (a0 != 0) and ((a1 - a0) / a0 < tau).

    a0, a1 are the batch accuracies of RTM and NTM against the noisy labels; computed from
    the integer counts of correct predictions so the ratio is exact. Returns a 0-d bool.
    """
    return mining_from_counts((rtm_pred == y).sum().float(), (ntm_pred == y).sum().float(), tau)


def mining_from_counts(c0: torch.Tensor, c1: torch.Tensor, tau: float) -> torch.Tensor:
    """The memorisation check from the correct counts c0 (RTM) and c1 (NTM) of a batch; under
    DDP the counts of the global batch, summed over the ranks, so every rank decides alike."""
    gap = (c1 - c0) / c0.clamp(min=1.0)
    return (c0 > 0) & (gap < tau)


def select(rtm_pred: torch.Tensor, ntm_pred: torch.Tensor, y: torch.Tensor, mining: torch.Tensor,
           selection: str = "cifar", mine: bool = True) -> torch.Tensor:
    """Asymmetric sample selection (ASS), plus mining (ASM) while `mining` is on.

    ASS keeps the samples on which the two nets agree with the label (agreement); ASM adds, from
    their disagreement, those only the NTM predicts as labelled. The "web" selection of the
    public Web/Food scripts also keeps the other disagreement, those only the RTM predicts as
    labelled, in both cases. `mine=False` is the ablation without ASM.
    """
    right0, right1 = rtm_pred == y, ntm_pred == y
    agreement = right0 & right1
    sel = agreement
    if mine:
        sel = sel | (~right0 & right1 & mining)  # disagreement the NTM gets right, while it has not memorised
    if selection == "web":
        sel = sel | (right0 & ~right1)  # disagreement the RTM gets right
    return sel


def count_selected(count: torch.Tensor, idx: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """count[idx[sel]] += 1, written as a masked add so the shapes stay static (a scatter-add:
    vmap over packed runs, act/pack/step.py, makes it one op, where index_add_ loops over the runs)."""
    return count.scatter_add_(0, idx, sel.to(count.dtype))


def selected_loss(ce0: torch.Tensor, sel: torch.Tensor, count: torch.Tensor, epoch: int,
                  reweight: bool = True, selected: torch.Tensor | None = None) -> torch.Tensor:
    """L_sel with dynamic sample re-weighting (DSRW): the mean over selected samples of CE
    weighted by count / (epoch + 1).

    `count` holds the bank's counts of the batch's samples after this step's update.
    `selected` is the number of selected samples the mean divides by (default: those of
    `sel`; under DDP those of the global batch). The public code gives NaN when nothing is
    selected; this gives 0 then.
    """
    w = sel.float()
    if reweight:
        w = w * count.float() / (epoch + 1)
    return (ce0 * w).sum() / (sel.sum() if selected is None else selected).clamp(min=1).float()


def consistency_targets(ema_rows: torch.Tensor, p0: torch.Tensor, y: torch.Tensor,
                        sel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The EMA update and the pseudo-label of consistency regularisation (CR).

    ema_new = 0.8 * ema + 0.2 * p0; q = onehot(y) for selected samples, ema_new otherwise;
    pseudo = argmax q. Returns (ema_new, pseudo).
    """
    ema_new = EMA_MOMENTUM * ema_rows + (1 - EMA_MOMENTUM) * widen(p0)
    # scatter, not F.one_hot: one_hot checks the label range on the host (a sync) on some devices;
    # out of place: vmap (packed runs, act/pack/step.py) has a batching rule for it, not for scatter_.
    onehot = torch.zeros_like(ema_rows).scatter(1, y[:, None], 1.0)
    s = sel.float().unsqueeze(1)
    q = onehot * s + ema_new * (1 - s)
    return ema_new, q.argmax(dim=1)


def consistency_loss(logits_strong: torch.Tensor, pseudo: torch.Tensor, label_smoothing: float = 0.0,
                     reduction: str = "mean") -> torch.Tensor:
    """L_cr: CE of the RTM on the strong view against the pseudo-labels of `consistency_targets`."""
    return cross_entropy(logits_strong, pseudo, label_smoothing, reduction)


def rtm_loss(l_sel: torch.Tensor, l_cr: torch.Tensor | None) -> torch.Tensor:
    """L0 = 0.8 * L_sel + 0.2 * L_cr; without CR (ablation) L0 = L_sel."""
    if l_cr is None:
        return l_sel
    return SELECT_WEIGHT * l_sel + (1 - SELECT_WEIGHT) * l_cr


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0,
                  reduction: str = "mean") -> torch.Tensor:
    """The CE every loss uses (label smoothing 0 on CIFAR, 0.35 in the Web/Food scripts)."""
    return F.cross_entropy(widen(logits), y, label_smoothing=label_smoothing, reduction=reduction)


def widen(t: torch.Tensor) -> torch.Tensor:
    """`t` in the precision the losses take: half-precision (AMP) logits in float32, float32 and
    float64 ones as they are (float64 nets keep their losses in float64: the exactness tests)."""
    return t if t.dtype == torch.float64 else t.float()
