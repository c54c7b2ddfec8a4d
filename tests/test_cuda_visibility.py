"""`pytest` means the same on a GPU machine: an unmarked test sees no CUDA device (tests/conftest.py).

Checked here with tests/support/pretend_cuda.py, which makes `torch.cuda.is_available()` answer
True from collection on, as a GPU machine would: the refusal of `benchmarks.gpu` to measure
without a GPU passes under it, and fails once the conftest is left out (so the check has teeth).
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/test_gpu_benchmarks.py::test_the_gpu_command_refuses_to_measure_without_a_gpu"


def pretend_cuda(*extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.support.pretend_cuda", "-p",
                           "no:cacheprovider", "-m", "not cuda", *extra, TEST],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_an_unmarked_test_sees_no_cuda_where_torch_reports_a_device():
    run = pretend_cuda()
    assert run.returncode == 0, run.stdout[-2000:]


def test_without_the_conftest_the_pretended_device_reaches_the_test():
    run = pretend_cuda("--noconftest")
    assert run.returncode == 1 and "1 failed" in run.stdout, run.stdout[-2000:]
