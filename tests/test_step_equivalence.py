"""The fused step (act.step.engine) computes what the public ACT code's step computes.

benchmarks/naive_step.py re-states the public step (host syncs, the EMA bank on the CPU,
boolean-mask indexing, one backward per net). From identical nets, optimisers and bank, on
identical batches, both must leave the same parameters and BN statistics of both nets and
the same memory bank (EMA and count), in fp32 on the CPU.
"""
import copy
from dataclasses import dataclass

import pytest
import torch

from act.models import create_model
from act.step import engine
from benchmarks.naive_step import NaiveACT
from benchmarks.step import LR, LR1, bank_diff, fused_context, state_diff
from pipelines.base import Batch

CLASSES, BATCH, SAMPLES, SIZE = 10, 32, 200, 32
WARMUP_EPOCH, ROBUST_EPOCH = 0, 3
TOLERANCE = 1e-4
ALWAYS, NEVER = 1e9, -1e9  # tau for which the memorisation check always / never lets mining on


@dataclass
class Twins:
    naive: NaiveACT
    ctx: engine.StepContext
    noisy: torch.Tensor
    generator: torch.Generator


def twins(tau: float = 0.025, mine: bool = True) -> Twins:
    """The public step and the fused step from the same nets, optimiser settings and bank."""
    torch.manual_seed(0)
    rtm, ntm = create_model("tinycnn", CLASSES), create_model("tinycnn", CLASSES)
    generator = torch.Generator().manual_seed(1)
    noisy = torch.randint(0, CLASSES, (SAMPLES,), generator=generator)
    ctx = fused_context(copy.deepcopy(rtm), copy.deepcopy(ntm), noisy, CLASSES, tau=tau, mine=mine)
    naive = NaiveACT(rtm, ntm, noisy, CLASSES, lr=LR, lr1=LR1, tau=tau, mining=mine)
    return Twins(naive, ctx, noisy, generator)


def images(generator: torch.Generator) -> torch.Tensor:
    """Noise plus a per-image colour offset, so the untrained nets' predictions vary by image."""
    return torch.randn(BATCH, 3, SIZE, SIZE, generator=generator) + 3 * torch.randn(BATCH, 3, 1, 1, generator=generator)


def labels_in_every_cell(t: Twins, x: torch.Tensor) -> torch.Tensor:
    """Half the batch labelled as the NTM predicts, a quarter as the RTM predicts, the rest at
    random: samples land in every (RTM right?, NTM right?) cell, and a0 > 0. Predicted by
    copies, so the nets' BN statistics are untouched."""
    with torch.no_grad():
        rtm_pred = copy.deepcopy(t.naive.rtm)(x).argmax(1)
        ntm_pred = copy.deepcopy(t.naive.ntm)(x).argmax(1)
    y = torch.randint(0, CLASSES, (BATCH,), generator=t.generator)
    half, three_quarters = BATCH // 2, 3 * BATCH // 4
    y[:half] = ntm_pred[:half]
    y[half:three_quarters] = rtm_pred[half:three_quarters]
    return y


def run_warmup(t: Twins, steps: int) -> None:
    stats = engine.EpochStats(torch.device("cpu"))
    for _ in range(steps):
        index = torch.randperm(SAMPLES, generator=t.generator)[:BATCH]
        batch = Batch(index=index, weak=images(t.generator), strong=None, label=t.noisy[index],
                      true_label=t.noisy[index])
        t.naive.warmup_step(batch.weak, batch.label, batch.index)
        engine.eager_step(t.ctx, engine.warmup_losses, batch, WARMUP_EPOCH, stats)


def run_robust(t: Twins, steps: int) -> tuple[list[dict], dict]:
    """`steps` robust steps of both; the public step's decisions and the fused step's statistics."""
    stats = engine.EpochStats(torch.device("cpu"))
    decisions = []
    for _ in range(steps):
        index = torch.randperm(SAMPLES, generator=t.generator)[:BATCH]
        weak, strong = images(t.generator), images(t.generator)
        y = labels_in_every_cell(t, weak)
        batch = Batch(index=index, weak=weak, strong=strong, label=y, true_label=y)
        decisions.append(t.naive.robust_step(weak, strong, y, index, ROBUST_EPOCH))
        engine.eager_step(t.ctx, engine.robust_losses, batch, ROBUST_EPOCH, stats)
    return decisions, stats.read()


def assert_same_state(t: Twins) -> None:
    assert state_diff(t.naive, t.ctx) <= TOLERANCE
    assert bank_diff(t.naive, t.ctx) <= TOLERANCE
    assert torch.equal(t.naive.weights.long(), t.ctx.bank.count)


def test_warmup_steps_match_the_public_step():
    t = twins()
    run_warmup(t, 3)
    assert_same_state(t)
    assert int(t.ctx.bank.count.sum()) == 3 * BATCH


@pytest.mark.parametrize("tau,mine,mining", [(ALWAYS, True, True), (NEVER, True, False), (ALWAYS, False, False)],
                         ids=["mining-on", "mining-off", "without-mining-ablation"])
def test_robust_steps_match_the_public_step(tau, mine, mining):
    t = twins(tau, mine)
    run_warmup(t, 2)
    decisions, stats = run_robust(t, 5)
    assert [d["mining"] for d in decisions] == [mining] * 5
    assert stats["mining_steps"] == 5 * mining
    assert stats["selected"] == sum(d["selected"] for d in decisions) > 0
    assert_same_state(t)
    assert int(t.ctx.bank.count.max()) > 1  # re-weighting saw counts above one
