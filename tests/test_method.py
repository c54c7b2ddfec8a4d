"""ACT's tensor functions on hand-made tensors (ACT_SPEC.md "Robust phase")."""
import math

import pytest
import torch

from act.method import functions as M

# Every (RTM right?, NTM right?) combination, one sample each; label 0 for all.
Y = torch.tensor([0, 0, 0, 0])
PRED0 = torch.tensor([0, 0, 1, 1])  # right, right, wrong, wrong
PRED1 = torch.tensor([0, 1, 0, 1])  # right, wrong, right, wrong
ON, OFF = torch.tensor(True), torch.tensor(False)


@pytest.mark.parametrize("selection,mining,expected", [
    ("cifar", OFF, [True, False, False, False]),  # ASS: both right
    ("cifar", ON, [True, False, True, False]),    # + ASM: only the NTM right
    ("web", OFF, [True, True, False, False]),     # web also keeps only-RTM-right
    ("web", ON, [True, True, True, False]),
])
def test_selection_truth_table(selection, mining, expected):
    assert M.select(PRED0, PRED1, Y, mining, selection).tolist() == expected


def test_without_the_mining_ablation_mining_never_adds_samples():
    assert M.select(PRED0, PRED1, Y, ON, "cifar", mine=False).tolist() == [True, False, False, False]


def test_with_mining_on_the_selection_is_the_ntm_agreement():
    y = torch.randint(0, 5, (200,), generator=torch.Generator().manual_seed(0))
    p0 = torch.randint(0, 5, (200,), generator=torch.Generator().manual_seed(1))
    p1 = torch.randint(0, 5, (200,), generator=torch.Generator().manual_seed(2))
    assert torch.equal(M.select(p0, p1, y, ON, "cifar"), p1 == y)


@pytest.mark.parametrize("right0,right1,tau,expected", [
    (0, 5, 0.025, False),    # a0 == 0: never mine
    (10, 10, 0.025, True),   # no gap
    (40, 41, 0.025, False),  # (41 - 40) / 40 = 0.025 is not < tau
    (100, 102, 0.025, True), # 0.02 < tau
    (10, 20, 0.025, False),  # the NTM is far ahead: memorising
    (20, 10, 0.025, True),   # negative gap
])
def test_memorisation_check(right0, right1, tau, expected):
    n = 128
    y = torch.zeros(n, dtype=torch.long)
    rtm_pred = torch.ones(n, dtype=torch.long)
    ntm_pred = torch.ones(n, dtype=torch.long)
    rtm_pred[:right0] = 0
    ntm_pred[:right1] = 0
    assert bool(M.memorisation_check(rtm_pred, ntm_pred, y, tau)) is expected


def test_count_update_adds_one_only_to_selected_samples():
    count = torch.tensor([0, 3, 5, 7, 9])
    M.count_selected(count, torch.tensor([4, 1, 2]), torch.tensor([True, False, True]))
    assert count.tolist() == [0, 3, 6, 7, 10]


def test_selected_loss_is_the_reweighted_mean_over_the_selected():
    ce = torch.tensor([1.0, 2.0, 4.0, 8.0])
    sel = torch.tensor([True, False, True, False])
    count = torch.tensor([3, 100, 1, 100])
    epoch = 1  # weights count / (epoch + 1)
    expected = (1.0 * 3 / 2 + 4.0 * 1 / 2) / 2
    assert M.selected_loss(ce, sel, count, epoch).item() == pytest.approx(expected)
    assert M.selected_loss(ce, sel, count, epoch, reweight=False).item() == pytest.approx(2.5)


def test_selected_loss_is_zero_when_nothing_is_selected():
    value = M.selected_loss(torch.tensor([1.0, 2.0]), torch.tensor([False, False]), torch.tensor([1, 1]), 0)
    assert value.item() == 0.0 and not math.isnan(value.item())


def test_pseudo_label_is_the_label_when_selected_and_the_ema_argmax_otherwise():
    ema = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    p0 = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 0])
    sel = torch.tensor([True, False])
    ema_new, pseudo = M.consistency_targets(ema, p0, y, sel)
    torch.testing.assert_close(ema_new, torch.tensor([[0.8, 0.0, 0.2], [0.8, 0.2, 0.0]]))
    assert pseudo.tolist() == [0, 0]
    # After a few updates towards class 1 the unselected sample's pseudo-label flips.
    for _ in range(4):
        ema_new, pseudo = M.consistency_targets(ema_new, p0, y, sel)
    assert pseudo.tolist() == [0, 1]


def test_conf_penalty_is_minus_the_entropy_and_clamps_the_logits():
    logits = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    assert M.conf_penalty(logits).item() == pytest.approx(-math.log(2))
    # The public code clamps logits at 1e-12: negative logits become ~0 before the softmax.
    assert M.conf_penalty(torch.tensor([[-3.0, 2.0]])).item() == pytest.approx(
        M.conf_penalty(torch.tensor([[1e-12, 2.0]])).item())


def test_rtm_loss_mixes_selection_and_consistency():
    assert M.rtm_loss(torch.tensor(1.0), torch.tensor(2.0)).item() == pytest.approx(1.2)
    assert M.rtm_loss(torch.tensor(1.0), None).item() == 1.0


def test_bank_starts_from_the_one_hot_noisy_label():
    bank = M.Bank.create(torch.tensor([2, 0]), 3)
    assert bank.count.tolist() == [0, 0]
    assert bank.ema.tolist() == [[0, 0, 1], [1, 0, 0]]
