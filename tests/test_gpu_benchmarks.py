"""The GPU benchmarks run where they can: the proxy (CUDA code paths on the CPU) meets its goals,
and `benchmarks.gpu` runs on the CPU in smoke mode and refuses to measure without a GPU."""
import json

import pytest
import torch

from benchmarks import gpu, gpu_proxy


def test_the_cuda_code_paths_meet_the_proxy_goals():
    result = gpu_proxy.measure(quick=True)
    assert set(result["syncs"]) >= {"step.warmup", "step.robust", "pipeline.tensor_epoch",
                                     "chunk.autoaugment_cifar10", "chunk.rand_augment"}
    assert all(n == 0 for n in result["syncs"].values()), result["syncs"]
    assert all(n == 0 for n in result["graph_breaks"].values()), result["graph_breaks"]
    for view in result["strong_view_per_batch"]:
        assert view["batch"] == 128 and view["image_size"] == 32
        assert 0 < view["bytes"] <= gpu_proxy.BYTES_GOAL, view  # a count of bytes, not a timing


def test_the_gpu_command_runs_on_the_cpu_in_smoke_mode(tmp_path):
    result = gpu.main(["--smoke", "--skip-tests", "--out", str(tmp_path)])
    [record] = tmp_path.glob("gpu-*.json")
    assert json.loads(record.read_text())["figures"]["epochs"][0]["variant"] == "eager"
    assert result["pipelines"][0]["images_per_s"] > 0 and not result["cuda"]


def test_the_gpu_command_refuses_to_measure_without_a_gpu(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu.main(["--skip-tests"])
    assert exit_info.value.code == 2 and "no CUDA device here" in capsys.readouterr().err
