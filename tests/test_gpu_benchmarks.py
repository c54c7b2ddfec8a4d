"""The GPU benchmarks run where they can: the proxy (CUDA code paths on the CPU) meets its goals,
and `benchmarks.gpu` runs on the CPU in smoke mode and refuses to measure without a GPU."""
import json
import re
import sys
import time

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
    assert re.fullmatch(r"gpu-.+-\d{4}-\d\d-\d\dT\d{6}Z\.json", record.name)  # the time in its name
    figures = json.loads(record.read_text())["figures"]
    assert figures["epochs"][0]["variant"] == "eager" and not result["cuda"]
    assert figures["epochs"][0]["compiled"] == {"warmup": "not compiled", "robust": "not compiled"}
    assert figures["pipeline_alone"]["images_per_s"] > 0
    assert figures["capture_race"]["workers"] == 4 and figures["syncs"]["counted"] is False
    assert figures["skipped"] == ["kernels: needs CUDA", "cuda_checks: needs CUDA"]
    assert "error" not in figures["packed_epochs"], figures["packed_epochs"]


def test_the_plan_puts_the_epoch_variants_first():
    rows = gpu.main(["--budget-s", "400", "--plan"])["plan"]
    assert [name for name, _, _ in rows[:4]] == ["epochs.compile+graph", "epochs.eager", "epochs.graph",
                                                 "epochs.compile"]
    assert all(why is None for _, _, why in rows[:4])  # a 400 s budget holds every epoch variant


def fake_parts(clock, seconds):
    """Parts that take their estimate on `clock` and return what they saw recorded before them."""
    def part(name, estimate):
        def run(session):
            clock.now += estimate
            figures = json.loads(session.path.read_text())["figures"] if session.path.exists() else {}
            return {"name": name, "epochs_recorded_before": len(figures.get("epochs", []))}
        return gpu.Part(name, run, estimate, cpu_estimate_s=estimate)
    return [part(name, estimate) for name, estimate in seconds]


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_what_runs_under_a_fake_clock_is_what_the_plan_admits(tmp_path, monkeypatch):
    clock = FakeClock()
    parts = [("epochs.eager", 30), ("syncs", 50), ("capture_race", 15), ("step_alone", 40), ("pipeline_alone", 5)]
    monkeypatch.setattr(gpu, "PARTS", fake_parts(clock, parts))
    planned = gpu.main(["--smoke", "--budget-s", "60", "--plan"])["plan"]
    assert [(n, why is None) for n, _, why in planned] == [("epochs.eager", True), ("syncs", False),
                                                           ("capture_race", True), ("step_alone", False),
                                                           ("pipeline_alone", True)]
    result = gpu.main(["--smoke", "--budget-s", "60", "--out", str(tmp_path)], clock=clock, started=clock.now)
    ran = [result["epochs"][0]["name"]] + [name for name in ("syncs", "capture_race", "step_alone", "pipeline_alone")
                                           if name in result]
    assert ran == [n for n, _, why in planned if why is None]
    assert [line.split(":")[0] for line in result["skipped"]] == ["syncs", "step_alone"]


def test_each_epoch_variant_is_recorded_the_moment_it_ends(tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(gpu, "PARTS", fake_parts(clock, [("epochs.eager", 1), ("syncs", 1)]))
    result = gpu.main(["--smoke", "--out", str(tmp_path)], clock=clock, started=clock.now)
    assert result["syncs"]["epochs_recorded_before"] == 1  # on disk before the next part began


def test_a_hung_cuda_check_is_recorded_and_the_next_one_runs(tmp_path, monkeypatch):
    commands = {"hangs": "import time; time.sleep(60)", "fails": "raise SystemExit('the bytes differ')",
                "passes": "pass"}
    monkeypatch.setattr(gpu, "check_names", lambda: list(commands))
    monkeypatch.setattr(gpu, "check_command", lambda name, scratch: [sys.executable, "-c", commands[name]])
    setting = gpu.Setting("cpu", 8, 8, "tinycnn", True, str(tmp_path), ["eager"])
    session = gpu.Session(setting, gpu.Budget(600), {"device": "cpu"}, tmp_path / "gpu.json",
                          check_timeout=lambda: 2.0)
    out = gpu.cuda_checks(session)
    assert [out[name]["result"] for name in commands] == ["hung", "failed", "passed"]
    assert out["hangs"]["error"] == "no result within 2 s; the check was killed"
    assert out["fails"]["error"] == "the bytes differ"
    assert json.loads(session.path.read_text())["figures"]["cuda_checks"] == out  # recorded as it went


def test_the_cuda_checks_left_out_by_the_budget_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu, "check_names", lambda: ["a", "b"])
    setting = gpu.Setting("cpu", 8, 8, "tinycnn", True, str(tmp_path), ["eager"])
    session = gpu.Session(setting, gpu.Budget(5), {"device": "cpu"}, tmp_path / "gpu.json")
    assert gpu.cuda_checks(session) == {name: {"result": "not run", "error": "5 s of the budget left"}
                                        for name in ("a", "b")}


def test_a_failing_part_is_recorded_and_the_others_still_run(tmp_path, monkeypatch):
    def broken(session):
        raise RuntimeError("no kernel image is available for execution on the device")

    parts = [gpu.Part("syncs", broken, 1), *[p for p in gpu.PARTS if p.name == "pipeline_alone"]]
    monkeypatch.setattr(gpu, "PARTS", parts)
    result = gpu.main(["--smoke", "--out", str(tmp_path)])
    assert result["syncs"]["error"].startswith("RuntimeError: no kernel image is available for execution on the device")
    assert result["pipeline_alone"]["images_per_s"] > 0


def test_the_gpu_command_refuses_to_measure_without_a_gpu(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu.main(["--skip-checks"])
    assert exit_info.value.code == 2 and "no CUDA device here" in capsys.readouterr().err


def test_a_call_from_code_counts_its_budget_from_the_call_not_from_the_import(tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(gpu, "PARTS", fake_parts(clock, [("syncs", 1)]))
    monkeypatch.setattr(gpu, "STARTED", time.monotonic() - 10_000)  # imported long ago, as in a long test session
    assert "syncs" in gpu.main(["--smoke", "--budget-s", "60", "--out", str(tmp_path)])
