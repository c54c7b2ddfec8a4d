"""What every test sees of CUDA, and the tests that CI also runs under the oldest torch supported.

A test without the `cuda` marker sees no CUDA device whatever the machine, and so do its
fixtures of every scope and the test modules as they are collected: from `pytest_configure` on,
`torch.cuda.is_available()` answers False, `torch.cuda.device_count()` 0, and CUDA_VISIBLE_DEVICES
is empty (for the processes a test starts too). Only while a cuda-marked test is set up, runs and
is torn down does torch answer as the machine does (a module- or session-scoped fixture that such
a test is the first to use is set up then, and sees the machine). So `pytest` on a GPU machine
runs the same tests the same way as CI. A test that needs CUDA carries the marker and is skipped
where there is none; `pytest -m cuda` runs only those (tests/test_cuda.py: the checks of
tests/cuda_checks.py, run with deterministic cuDNN).
`tests/support/pretend_cuda.py` makes torch report one CUDA device to check this on a machine
without a GPU: `pytest -p tests.support.pretend_cuda -m "not cuda"` must pass.

`pytest -m moving_parts` runs the modules of MOVING_PARTS: the tests that touch the parts of
torch that change between its releases. CI (.ci/run) runs them under the oldest torch that
setup.py accepts, and the whole suite under the newest one it pins.
"""
import os
from pathlib import Path

import pytest
import torch

# DDP and torchrun, torch.compile, CUDA-graph code paths walked on the CPU, vmap and
# functional_call (packs), checkpoints.
MOVING_PARTS = (
    "test_distributed.py",
    "test_cuda_graph.py",
    "test_step_equivalence.py",
    "test_pack.py",
    "test_pack_runs.py",
    "test_checkpoint.py",
    "test_view_passes.py",
    "test_views_static.py",
    "test_fallbacks.py",
    "test_gpu_benchmarks.py",
)


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
    missing = [name for name in MOVING_PARTS if not (Path(__file__).parent / name).is_file()]
    if missing:
        raise pytest.UsageError(f"tests/conftest.py: MOVING_PARTS names modules that are not in tests/: {missing}")
    config.addinivalue_line("markers", "moving_parts: a test of a module in MOVING_PARTS (tests/conftest.py): "
                                       "CI runs them under the oldest torch supported")
    MACHINE = Cuda()
    MACHINE.hide()


def pytest_unconfigure(config):
    if MACHINE is not None:
        MACHINE.reveal()


def pytest_collection_modifyitems(config, items):
    skip = None if MACHINE.is_available() else pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.path.name in MOVING_PARTS:
            item.add_marker(pytest.mark.moving_parts)
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
