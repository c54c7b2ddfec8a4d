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
    assert result["warmup_strong_view_ops"] == 0
    assert result["view_apply_capturable"] == {"autoaugment_cifar10": True, "rand_augment": True}
    assert set(result["blocking_copies"]) == {"tensor", "reference", "dali", "ffcv"}
    assert all(n in (0, None) for n in result["blocking_copies"].values()), result["blocking_copies"]
    assert result["blocking_copies"]["tensor"] == result["blocking_copies"]["reference"] == 0
    one, eight = result["packed_step_ops"]["packs"]  # a robust step of 1 and of 8 packed runs
    assert (one["runs"], eight["runs"]) == (1, 8) and one["syncs"] == eight["syncs"] == 0
    assert eight["ops"] <= gpu_proxy.PACKED_OPS_GOAL * one["ops"], result["packed_step_ops"]
    assert eight["bytes_over_runs_alone"] <= gpu_proxy.PACKED_BYTES_GOAL, result["packed_step_ops"]


def test_the_gpu_command_runs_on_the_cpu_in_smoke_mode_and_names_what_needs_cuda(tmp_path):
    result = gpu.main(["--smoke", "--out", str(tmp_path)])
    [record] = tmp_path.glob("gpu-*.json")
    figures = json.loads(record.read_text())["figures"]
    assert figures["epochs"][0]["variant"] == "eager" and not result["cuda"]
    assert figures["pipeline_alone"]["images_per_s"] > 0
    assert figures["capture_race"]["epochs"] == 2 and figures["syncs"]["counted"] is False
    assert figures["skipped"] == ["cuda_tests: needs CUDA", "kernels: needs CUDA"]
    packs = figures["packed_epochs"]
    assert packs["alone_robust_epoch_s"] > 0 and [p["k"] for p in packs["packs"]] == [1, 2]
    assert all(p["one_after_another_s"] == p["k"] * packs["alone_robust_epoch_s"] for p in packs["packs"])


def test_the_gpu_command_leaves_out_what_its_budget_cannot_hold(tmp_path, capsys):
    result = gpu.main(["--smoke", "--budget-s", "0", "--out", str(tmp_path)])
    names = [line.split(":")[0] for line in result["skipped"]]
    assert names == ["cuda_tests", "capture_race", "syncs", "kernels", "step_alone", "pipeline_alone", "epochs.eager",
                     "packed_epochs"]
    assert "capture_race" not in result and result["epochs"] == []
    assert "skipped: cuda_tests: needs CUDA; capture_race: about 5 s needed, 0 s left" in capsys.readouterr().out


def test_a_failing_part_is_recorded_and_the_others_still_run(tmp_path, monkeypatch):
    def broken(setting):
        raise RuntimeError("no kernel image is available for execution on the device")

    monkeypatch.setattr(gpu, "PARTS", [gpu.Part("syncs", broken, 1), *gpu.PARTS[-1:]])
    result = gpu.main(["--smoke", "--variants", "eager", "--out", str(tmp_path)])
    assert result["syncs"] == {"error": "RuntimeError: no kernel image is available for execution on the device"}
    assert result["pipeline_alone"]["images_per_s"] > 0 and result["epochs"][0]["variant"] == "eager"


def test_the_gpu_command_refuses_to_measure_without_a_gpu(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu.main(["--skip-tests"])
    assert exit_info.value.code == 2 and "no CUDA device here" in capsys.readouterr().err
