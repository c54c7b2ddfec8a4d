"""The checks that need a CUDA device (tests/cuda_checks.py), each a test marked `cuda`: skipped
where there is none, run by `pytest -m cuda` on a GPU machine (and by `benchmarks.gpu` without pytest)."""
import pytest
from cuda_checks import CHECKS, run_check


@pytest.mark.cuda
@pytest.mark.parametrize("name", list(CHECKS))
def test_cuda_check(name, tmp_path):
    run_check(name, tmp_path)
