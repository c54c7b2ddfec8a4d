"""The learning-rate plan of ACT_SPEC.md."""
import math

import pytest

from act.errors import ActError
from act.method.lr import build_lr_plan, build_ntm_plan, parse_ntm_plan


def test_the_spec_example_plan():
    plan = build_lr_plan(0.01, 150, 50, 0.001, "cosine:20,5e-4,100")
    assert len(plan) == 150
    assert plan[:50] == [0.001] * 50
    cosine = plan[50:130]
    assert cosine[0] == pytest.approx(0.01)
    assert cosine[40] == pytest.approx((0.01 - 5e-4) * 0.5 * (1 + math.cos(math.pi * 40 / 80)) + 5e-4)
    assert all(a > b for a, b in zip(cosine, cosine[1:]))
    assert plan[130:] == [cosine[-1]] * 20


def test_a_constant_segment_comes_first_when_the_cosine_starts_after_warmup():
    plan = build_lr_plan(0.1, 30, 5, 0.01, "cosine:10,0.0,30")
    assert plan[:5] == [0.01] * 5
    assert plan[5:10] == [0.1] * 5
    assert plan[10] == pytest.approx(0.1)
    assert len(plan) == 30 and plan[-1] < 0.1


def test_plan_is_truncated_to_the_epochs():
    assert len(build_lr_plan(0.1, 10, 2, 0.01, "cosine:0,0,100")) == 10


def test_constant_decay_holds_lr_after_warmup():
    assert build_lr_plan(0.1, 5, 2, 0.01, "constant") == [0.01, 0.01, 0.1, 0.1, 0.1]


@pytest.mark.parametrize("bad", ["cosine:20,5e-4", "linear:1,2,3", "cosine:a,b,c", "cosine:50,0,20"])
def test_malformed_decay_is_refused(bad):
    with pytest.raises(ActError, match="optim.lr_decay"):
        build_lr_plan(0.1, 10, 0, 0.1, bad)


def test_the_ntm_plan_own_is_the_rtm_plan_built_from_lr1():
    assert build_ntm_plan("own", 0.01, 0.08, 30, 5, 0.001, "cosine:5,0,30") == build_lr_plan(0.08, 30, 5, 0.001,
                                                                                              "cosine:5,0,30")


def test_the_ntm_plan_shared_is_the_rtm_plan_as_the_public_cifar_script_builds_it():
    assert build_ntm_plan("shared", 0.01, 0.08, 30, 5, 0.001, "cosine:5,0,30") == build_lr_plan(0.01, 30, 5, 0.001,
                                                                                                 "cosine:5,0,30")


def test_the_public_web_ntm_plan_steps_lr1_down_at_epoch_60_with_no_warmup_rate():
    plan = build_ntm_plan("step:60,0.1", 0.005, 0.004, 100, 20, 0.001, "cosine:20,5e-4,100")
    assert plan[:60] == [0.004] * 60
    assert plan[60:] == pytest.approx([0.0004] * 40)


def test_the_public_food_ntm_plan_holds_lr1():
    assert build_ntm_plan("constant", 0.0005, 0.001, 50, 5, 0.002, "cosine:5,5e-5,50") == [0.001] * 50


@pytest.mark.parametrize("bad", ["step:60", "step:a,0.1", "step:-1,0.1", "step:60,-1", "cosine", "own:1"])
def test_a_malformed_ntm_plan_is_refused_naming_the_key(bad):
    with pytest.raises(ActError, match="optim.ntm_lr_plan"):
        parse_ntm_plan(bad)
