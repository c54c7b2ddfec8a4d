"""What every test sees of CUDA.

A test without the `cuda` marker sees no CUDA device whatever the machine, and so do its
fixtures of every scope and the test modules as they are collected: from `pytest_configure` on,
`torch.cuda.is_available()` answers False, `torch.cuda.device_count()` 0, and CUDA_VISIBLE_DEVICES
is empty (for the processes a test starts too). Only while a cuda-marked test is set up, runs and
is torn down does torch answer as the machine does (a module- or session-scoped fixture that such
a test is the first to use is set up then, and sees the machine). So `pytest` on a GPU machine
runs the same tests the same way as CI. A test that needs CUDA carries the marker and is skipped
where there is none; `pytest -m cuda` runs only those. CUDA tests that compare results exactly
run with deterministic cuDNN (the `deterministic_cudnn` fixture).
`tests/support/pretend_cuda.py` makes torch report one CUDA device to check this on a machine
without a GPU: `pytest -p tests.support.pretend_cuda -m "not cuda"` must pass.
"""
import os

import pytest
import torch


class Cuda:
    """torch's answers about CUDA on this machine (kept at configuration, after any plugin that
    pretends a device), and switching what the tests see between none and those answers."""

    def __init__(self):
        self.is_available = torch.cuda.is_available
        self.device_count = torch.cuda.device_count
        self.visible = os.environ.get("CUDA_VISIBLE_DEVICES")

    def hide(self) -> None:
        torch.cuda.is_available = no_cuda
        torch.cuda.device_count = no_devices
        os.environ["CUDA_VISIBLE_DEVICES"] = ""

    def reveal(self) -> None:
        torch.cuda.is_available = self.is_available
        torch.cuda.device_count = self.device_count
        if self.visible is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = self.visible


def no_cuda() -> bool:
    return False


def no_devices() -> int:
    return 0


MACHINE: Cuda | None = None


@pytest.hookimpl(trylast=True)  # after a plugin's own pytest_configure (tests/support/pretend_cuda.py)
def pytest_configure(config):
    global MACHINE
    MACHINE = Cuda()
    MACHINE.hide()


def pytest_unconfigure(config):
    if MACHINE is not None:
        MACHINE.reveal()


def pytest_collection_modifyitems(config, items):
    skip = None if MACHINE.is_available() else pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if skip is not None and item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """The machine's CUDA for a cuda-marked test's setup, call and teardown; none otherwise (and
    none again after any test, whatever it left in torch.cuda or the environment)."""
    if item.get_closest_marker("cuda") is not None:
        MACHINE.reveal()
    try:
        yield
    finally:
        MACHINE.hide()


@pytest.fixture
def deterministic_cudnn(monkeypatch):
    """cuDNN's deterministic algorithms, for CUDA tests that compare results exactly."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
