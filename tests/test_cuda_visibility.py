"""`pytest` means the same on a GPU machine: an unmarked test, its fixtures and the collection see
no CUDA device (tests/conftest.py).

Checked here with tests/support/pretend_cuda.py, which makes torch report one CUDA device from
configuration on, as a GPU machine would, on tests/support/cuda_probe.py: what collection,
fixtures of every scope, an unmarked and a cuda-marked test see. An unmarked test's fixtures see
no device under it, and do once the conftest is left out (so the check has teeth). A function
that prints takes its stream when called, not at import: a module first imported inside a test
would otherwise print to that test's closed capture later (the probe's last two tests).
"""
import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = "tests/support/cuda_probe.py"
TEST = f"{PROBE}::test_the_fixtures_of_an_unmarked_test_see_no_cuda"


def pretend_cuda(*extra: str, marks: str = "not cuda") -> subprocess.CompletedProcess:
    """pytest under pretend_cuda, with CUDA_VISIBLE_DEVICES=0 as on a GPU machine."""
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.support.pretend_cuda", "-p",
                           "no:cacheprovider", "-m", marks, *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": "0"})


def test_an_unmarked_test_and_its_fixtures_see_no_cuda_where_torch_reports_a_device():
    run = pretend_cuda(TEST)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-2000:]


def test_without_the_conftest_the_pretended_device_reaches_the_test():
    run = pretend_cuda("--noconftest", TEST)
    assert run.returncode == 1 and "1 failed" in run.stdout, run.stdout[-2000:]


def test_collection_and_fixtures_of_every_scope_see_cuda_only_for_a_marked_test():
    run = pretend_cuda(PROBE, marks="")
    assert run.returncode == 0 and "6 passed" in run.stdout, run.stdout[-3000:]


def test_no_function_takes_a_standard_stream_bound_at_import_as_a_default():
    bound = []
    for folder in ("act", "pipelines", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    for default in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                        if (isinstance(default, ast.Attribute) and isinstance(default.value, ast.Name)
                                and default.value.id == "sys" and default.attr in ("stdout", "stderr")):
                            bound.append(f"{path.relative_to(ROOT)}:{default.lineno}")
    assert not bound, f"a default of sys.stdout/sys.stderr is the stream at import; use None and read it when called: {bound}"
