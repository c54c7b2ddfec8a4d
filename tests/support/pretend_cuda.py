"""A pytest plugin that makes `torch.cuda.is_available()` answer True on any machine, from
collection on: `pytest -p tests.support.pretend_cuda -m "not cuda"` checks that the unmarked
tests mean the same on a GPU machine as in CI (tests/conftest.py hides CUDA from them)."""
import torch


def pytest_configure(config):
    torch.cuda.is_available = lambda: True
