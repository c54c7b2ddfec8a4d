"""What every test sees of CUDA.

A test without the `cuda` marker sees no CUDA device whatever the machine (in this process,
and in the processes it starts: CUDA_VISIBLE_DEVICES is empty for them), so `pytest` on a GPU
machine runs the same tests the same way as CI. A test that needs CUDA carries the marker and
is skipped where there is none; `pytest -m cuda` runs only those. CUDA tests that compare
results exactly run with deterministic cuDNN (the `deterministic_cudnn` fixture).
`tests/support/pretend_cuda.py` makes `torch.cuda.is_available()` answer True to check this
on a machine without a GPU: `pytest -p tests.support.pretend_cuda -m "not cuda"` must pass.
"""
import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def cuda_only_where_marked(request, monkeypatch):
    if request.node.get_closest_marker("cuda") is None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture
def deterministic_cudnn(monkeypatch):
    """cuDNN's deterministic algorithms, for CUDA tests that compare results exactly."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
