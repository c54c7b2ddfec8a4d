"""A pytest plugin that makes torch report one CUDA device on any machine, as a GPU machine does
(`torch.cuda.is_available()` True, `torch.cuda.device_count()` 1), from configuration on:
`pytest -p tests.support.pretend_cuda -m "not cuda"` checks that the unmarked tests, their
fixtures included, mean the same on a GPU machine as in CI (tests/conftest.py hides CUDA from them)."""
import pytest
import torch


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: 1
