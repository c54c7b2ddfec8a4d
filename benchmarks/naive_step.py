"""The public ACT code's training step, re-stated as it is structured there: the baseline.

Kept on purpose, because they are what the fused step (`act.step.engine`) removes: the batch
accuracies are read to the host and the memorisation check is a Python branch on them;
the EMA bank lives on the CPU and its rows travel to the device and back every step;
selected samples are taken by boolean-mask indexing (a shape that depends on the data);
each network has its own backward; the losses are read with `.item()` for the meters.
Only the NaN of an empty selection is replaced by 0, so the two steps can be compared.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4


def sgd(net: nn.Module, lr: float) -> torch.optim.SGD:
    """The public code's optimiser: SGD, momentum 0.9, Nesterov, weight decay 5e-4 (default kernels)."""
    return torch.optim.SGD(net.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, nesterov=True)


def conf_penalty(logits: torch.Tensor) -> torch.Tensor:
    """mean_batch(sum_c p_c log p_c), with the public code's clamp on the logits."""
    probs = F.softmax(logits.clamp(min=1e-12), dim=1)
    return torch.mean(torch.sum(probs.log() * probs, dim=1))


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Batch accuracy in percent, read to the host."""
    return (logits.argmax(dim=1) == y).float().mean().item() * 100.0


class NaiveACT:
    """Two nets, two optimisers, the per-sample count on the device and the EMA bank on the CPU.

    `mining=False` is the ablation without asymmetric sample mining (never mine).
    """

    def __init__(self, rtm: nn.Module, ntm: nn.Module, noisy: torch.Tensor, num_classes: int, *,
                 lr: float = 0.01, lr1: float = 0.08, tau: float = 0.025, mining: bool = True):
        self.rtm, self.ntm = rtm, ntm
        self.rtm_opt, self.ntm_opt = sgd(rtm, lr), sgd(ntm, lr1)
        self.device = next(rtm.parameters()).device
        self.num_classes = num_classes
        self.tau = tau
        self.mining = mining
        self.weights = torch.zeros(len(noisy), dtype=torch.int32, device=self.device)
        self.ema_bank = F.one_hot(noisy.cpu(), num_classes).float()

    def warmup_step(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[float, float]:
        """RTM on CE + confidence penalty, NTM on CE, every sample counted once."""
        rtm_logits = self.rtm(x)
        ntm_logits = self.ntm(x)
        rtm_loss = F.cross_entropy(rtm_logits, y) + conf_penalty(rtm_logits)
        ntm_loss = F.cross_entropy(ntm_logits, y)
        self.weights[idx] += 1
        self.backward_and_step(rtm_loss, ntm_loss)
        return rtm_loss.item(), ntm_loss.item()

    def robust_step(self, x: torch.Tensor, xs: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
                    epoch: int) -> dict:
        """One robust-phase batch; returns the meters' losses and what the step decided."""
        rtm_logits = self.rtm(x)
        ntm_logits = self.ntm(x)
        px0 = F.softmax(rtm_logits, dim=1)
        rtm_pred, ntm_pred = rtm_logits.argmax(dim=1), ntm_logits.argmax(dim=1)
        a0, a1 = accuracy(rtm_logits, y), accuracy(ntm_logits, y)
        mine = self.mining and a0 != 0 and (a1 - a0) / a0 < self.tau
        if mine:
            select = (rtm_pred == y) & (ntm_pred == y) | (rtm_pred != y) & (ntm_pred == y)
        else:
            select = (rtm_pred == y) & (ntm_pred == y)
        self.weights[idx[select]] += 1

        label_ema = self.ema_bank[idx.cpu()].clone().to(self.device)
        label_ema = label_ema * 0.8 + px0 * 0.2
        s = select.float().unsqueeze(1)
        q = F.one_hot(y, self.num_classes).float() * s + label_ema * (1 - s)
        pseudo = q.argmax(dim=1)

        ce = F.cross_entropy(rtm_logits[select], y[select], reduction="none")
        rtm_loss = torch.mean(ce * self.weights[idx[select]] / (epoch + 1))
        rtm_loss = torch.nan_to_num(rtm_loss, nan=0.0)
        ntm_loss = F.cross_entropy(ntm_logits, y)
        logits_cr = self.rtm(xs)
        loss_cr = F.cross_entropy(logits_cr, pseudo)
        rtm_loss = 0.8 * rtm_loss + 0.2 * loss_cr
        self.backward_and_step(rtm_loss, ntm_loss)
        self.ema_bank[idx.cpu()] = label_ema.detach().cpu()
        return {"rtm_loss": rtm_loss.item(), "ntm_loss": ntm_loss.item(), "mining": mine, "selected": int(select.sum().item())}

    def backward_and_step(self, rtm_loss: torch.Tensor, ntm_loss: torch.Tensor) -> None:
        self.rtm_opt.zero_grad()
        rtm_loss.backward()
        self.rtm_opt.step()
        self.ntm_opt.zero_grad()
        ntm_loss.backward()
        self.ntm_opt.step()
