"""Each ablation switch (method.ablation.*) changes what the paper says it changes, on one robust step."""
import copy

import torch

from act.method import functions as M
from act.models import create_model
from act.step import engine
from pipelines.base import Batch

N, CLASSES = 32, 4


def context(**switches) -> engine.StepContext:
    torch.manual_seed(0)
    rtm, ntm = create_model("tinycnn", CLASSES, 3, 12), create_model("tinycnn", CLASSES, 3, 12)
    opts = [torch.optim.SGD(net.parameters(), lr=0.1) for net in (rtm, ntm)]
    bank = M.Bank.create(torch.arange(N) % CLASSES, CLASSES)
    return engine.StepContext(rtm=rtm, ntm=ntm, rtm_opt=opts[0], ntm_opt=opts[1], bank=bank, **switches)


def batch(strong: bool = True) -> Batch:
    g = torch.Generator().manual_seed(1)
    weak = torch.randn(N, 3, 12, 12, generator=g)
    return Batch(index=torch.arange(N), weak=weak, strong=torch.randn(N, 3, 12, 12, generator=g) if strong else None,
                 label=torch.arange(N) % CLASSES, true_label=torch.arange(N) % CLASSES)


def robust(ctx: engine.StepContext, b: Batch) -> dict[str, float]:
    totals = torch.zeros(len(engine.STAT_NAMES), dtype=torch.float64)
    with torch.no_grad():
        engine.robust_losses(ctx, b, totals)
    return dict(zip(engine.STAT_NAMES, totals.tolist()))


def test_without_consistency_the_strong_view_is_never_read_and_the_bank_ema_stays():
    ctx = context(consistency=False)
    before = ctx.bank.ema.clone()
    robust(ctx, batch(strong=False))  # a batch without a strong view trains
    assert torch.equal(ctx.bank.ema, before)
    with_cr = context(consistency=True)
    robust(with_cr, batch())
    assert not torch.equal(with_cr.bank.ema, before)  # CR moves the EMA of every sample of the batch


def test_without_reweighting_the_selected_loss_ignores_how_often_a_sample_was_selected():
    losses = {}
    for reweight in (True, False):
        for count in (0, 9):
            ctx = context(reweight=reweight, consistency=False)
            ctx.bank.count.fill_(count)
            ctx.set_epoch(2)
            losses[reweight, count] = robust(ctx, batch(strong=False))["rtm_loss"]
    assert losses[False, 0] == losses[False, 9]
    assert losses[True, 9] > losses[True, 0] > 0  # count / (epoch + 1) weights the selected CE


def test_without_mining_the_memorisation_check_never_adds_samples():
    mined, plain = (context(mine=mine, tau=1e9, consistency=False) for mine in (True, False))  # the check always fires
    plain.rtm.load_state_dict(mined.rtm.state_dict())
    plain.ntm.load_state_dict(mined.ntm.state_dict())
    b0 = batch(strong=False)
    with torch.no_grad():  # the step's own predictions (train-mode batch norm), on copies of the nets
        rtm_pred, ntm_pred = (copy.deepcopy(net)(b0.weak).argmax(1) for net in (mined.rtm, mined.ntm))
    only_ntm_right = ((rtm_pred != b0.label) & (ntm_pred == b0.label)).sum().item()
    a, b = robust(mined, b0), robust(plain, batch(strong=False))
    assert a["mining_steps"] == 1 and b["mining_steps"] == 0
    assert only_ntm_right > 0 and a["selected"] - b["selected"] == only_ntm_right
