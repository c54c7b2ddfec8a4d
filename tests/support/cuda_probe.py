"""Not collected by `pytest`: tests/test_cuda_visibility.py runs this module in a pytest of its
own, under tests/support/pretend_cuda.py (torch reports one CUDA device) and with
CUDA_VISIBLE_DEVICES=0, as on a GPU machine. It records what the collection, the fixtures of
every scope and the tests see of CUDA, and calls a console function in a test after the one that
first imported its module (pytest closes each test's captured stdout when the test ends).
The tests run in the order written."""
import os
import sys
from types import SimpleNamespace

import pytest
import torch

HIDDEN = (False, 0, "")  # no CUDA: (is_available, device_count, CUDA_VISIBLE_DEVICES)
MACHINE = (True, 1, "0")  # what pretend_cuda and the environment of this pytest say


def seen() -> tuple:
    return torch.cuda.is_available(), torch.cuda.device_count(), os.environ.get("CUDA_VISIBLE_DEVICES")


AT_COLLECTION = seen()


@pytest.fixture(scope="session")
def session_view():
    return seen()


@pytest.fixture(scope="module")
def module_view():
    return seen()


def test_the_collection_sees_no_cuda():
    assert AT_COLLECTION == HIDDEN


def test_the_fixtures_of_an_unmarked_test_see_no_cuda(session_view, module_view):
    assert (session_view, module_view, seen()) == (HIDDEN, HIDDEN, HIDDEN)


@pytest.mark.cuda
def test_a_cuda_marked_test_sees_the_machine():
    assert seen() == MACHINE


def test_an_unmarked_test_after_a_cuda_test_sees_no_cuda_again():
    assert seen() == HIDDEN


def test_a_console_module_first_imported_inside_a_test(capsys):
    assert "act.run.console" not in sys.modules, "the next test needs act.run.console imported here first"
    from act.run import console  # while sys.stdout is this test's capture, closed when the test ends

    assert console.print_summary


def test_its_function_prints_to_the_stdout_of_the_call(capsys):
    from act.run import console

    cfg = SimpleNamespace(data=SimpleNamespace(noise=SimpleNamespace(type="none"), name="digits"),
                          method=SimpleNamespace(name="act"))
    nothing = {"last10_mean": None}
    summary = {"rtm": nothing, "ntm": nothing, "noise": {"actual_noise_rate": 0.0}, "selection": {"precision": None},
               "truncated_images": {"count": 0}, "epoch_seconds_median": None}
    console.print_summary(SimpleNamespace(cfg=cfg, dir="runs/probe", history=[]), summary)
    assert "run folder: runs/probe" in capsys.readouterr().out
