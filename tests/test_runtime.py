"""The Runtime: every `auto` of a run decided in one function, as a table of (settings, machine) -> decision."""
from pathlib import Path

import pytest

from act.config import load_config
from act.errors import ActError
from act.run.runtime import Environment, resolve
from act.step.distributed import World

CPU = Environment(cpus=2, threads=2)
GPU = Environment(cuda_devices=1, bf16=True, cpus=16, threads=16, matplotlib=True, dali=True)
OLD_GPU = Environment(cuda_devices=1, bf16=False, cpus=16, threads=16)  # no bf16
TORCHRUN_GPUS = Environment(cuda_devices=8, bf16=True, cpus=64, threads=8, world=World(3, 8, 3, 8))
TORCHRUN_CPU = Environment(cpus=2, threads=1, world=World(1, 2, 1, 2))
TERMINAL = Environment(cpus=2, threads=2, terminal=True)


CIFAR = Path(__file__).resolve().parent.parent / "configs" / "cifar100n" / "sym20.yaml"  # every run key at its default


def decided(env: Environment, *overrides: str, cuda_paths=None) -> dict:
    return resolve(load_config(CIFAR, ["data.root=/data/cifar-100-python", *overrides]), env, cuda_paths).record()


@pytest.mark.parametrize("env,overrides,expected", [
    # device
    (CPU, (), {"device": "cpu"}),
    (GPU, (), {"device": "cuda"}),
    (GPU, ("run.device=cpu",), {"device": "cpu", "amp": "off", "compile": False, "cuda_graph": False}),
    (TORCHRUN_GPUS, (), {"device": "cuda:3", "world_size": 8, "rank": 3}),
    # AMP and its scaler
    (CPU, (), {"amp": "off", "grad_scaler": False}),
    (CPU, ("run.amp=bf16",), {"amp": "bf16", "grad_scaler": False}),
    (GPU, (), {"amp": "bf16", "grad_scaler": False}),
    (OLD_GPU, (), {"amp": "fp16", "grad_scaler": True, "cuda_graph": False}),  # the scaler reads the host
    # compile, its mode, CUDA graphs, the GPU code paths
    (CPU, (), {"compile": False, "cuda_graph": False, "cuda_paths": False, "view_graphs": True}),
    (GPU, (), {"compile": True, "compile_mode": "default", "cuda_graph": True, "cuda_graph_strict": False,
               "cuda_paths": True}),
    (GPU, ("run.compile_mode=reduce-overhead",), {"compile": True, "cuda_graph": False}),
    (GPU, ("run.compile_mode=max-autotune",), {"compile": True, "cuda_graph": False}),
    (GPU, ("run.compile_mode=max-autotune", "run.compile=false"), {"compile": False, "cuda_graph": True}),
    (GPU, ("run.compile_mode=max-autotune-no-cudagraphs",), {"cuda_graph": True}),
    (GPU, ("run.cuda_graph=false",), {"cuda_graph": False, "view_graphs": False}),
    (GPU, ("run.cuda_graph=true",), {"cuda_graph": True, "cuda_graph_strict": True}),
    (TORCHRUN_GPUS, (), {"compile": False, "cuda_graph": False, "sync_bn": True}),
    (TORCHRUN_GPUS, ("run.compile=true",), {"compile": True}),
    # sync batch norm
    (GPU, (), {"sync_bn": False}),
    (TORCHRUN_GPUS, ("run.sync_bn=false",), {"sync_bn": False}),
    (TORCHRUN_CPU, (), {"sync_bn": False, "device": "cpu"}),
    # pipeline and workers, threads
    (GPU, (), {"pipeline": "tensor"}),
    (GPU, ("pipeline.workers=3",), {"workers": 3}),
    (GPU, ("data.name=folder", "data.root=/x"), {"pipeline": "reference"}),
    (GPU, ("pipeline.workers=-1",), {"workers": 8}),
    (CPU, ("pipeline.workers=-1",), {"workers": 2}),
    (CPU, (), {"threads": 2}),
    (CPU, ("run.threads=1",), {"threads": 1}),
    # progress bar and plots
    (CPU, (), {"progress": False, "plots": False}),
    (TERMINAL, (), {"progress": True}),
    (CPU, ("run.progress=true",), {"progress": True}),
    (Environment(terminal=True, world=World(1, 2, 1, 2)), (), {"progress": False}),  # rank 1 never draws
    (GPU, (), {"plots": True}),
    (GPU, ("run.plots=false",), {"plots": False}),
])
def test_each_auto_is_decided_by_the_settings_and_the_machine(env, overrides, expected):
    got = decided(env, *overrides)
    assert {k: got[k] for k in expected} == expected


def test_the_gpu_code_paths_can_be_forced_on_the_cpu_and_change_nothing_else():
    forced, plain = decided(CPU, cuda_paths=True), decided(CPU)
    assert forced.pop("cuda_paths") and not plain.pop("cuda_paths") and forced == plain


@pytest.mark.parametrize("env,overrides,message", [
    (CPU, ("run.device=cuda",), "run.device=cuda but this machine has no CUDA device"),
    (CPU, ("run.amp=fp16",), "run.amp=fp16 needs a CUDA device"),
    (CPU, ("run.cuda_graph=true",), "run.cuda_graph=true needs a CUDA device"),
    (OLD_GPU, ("run.cuda_graph=true",), "needs no fp16 loss scaling"),
    (GPU, ("run.cuda_graph=true", "run.compile_mode=reduce-overhead"), "run.compile_mode=reduce-overhead"),
    (GPU, ("run.cuda_graph=true", "run.compile_mode=max-autotune"), "run.compile_mode=max-autotune"),
    (TORCHRUN_GPUS, ("run.cuda_graph=true",), "one process, not 8"),
    (TORCHRUN_GPUS, ("run.device=cuda:1",), "names one GPU, but under torchrun"),
    (Environment(cuda_devices=2, world=World(3, 4, 3, 4)), (), "LOCAL_RANK=3 but this machine has 2 CUDA devices"),
    (TORCHRUN_CPU, ("run.sync_bn=true",), "run.sync_bn=true needs CUDA devices"),
    (CPU, ("run.plots=true",), "run.plots=true needs matplotlib"),
])
def test_a_setting_the_machine_cannot_honour_is_refused_in_one_line(env, overrides, message):
    with pytest.raises(ActError, match=message) as caught:
        decided(env, *overrides)
    assert "\n" not in str(caught.value)


def test_the_pipeline_auto_picks_by_what_the_converted_folder_holds(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    path = f"pipeline.path={tmp_path}"
    assert decided(GPU, "data.name=folder", "data.root=/x", path)["pipeline"] == "dali"
    assert decided(CPU, "data.name=folder", "data.root=/x", path)["pipeline"] == "reference"  # DALI decodes on GPUs
    (tmp_path / "train.beton").write_text("")
    assert decided(CPU, "data.name=folder", "data.root=/x", path)["pipeline"] == "ffcv"
    assert decided(GPU, "data.name=folder", "data.root=/x", path, "pipeline.name=reference")["pipeline"] == "reference"


def test_a_run_records_its_runtime_whole_in_its_summary(tmp_path):
    import json

    from act.run import loop as training

    training.train(load_config(None, ["optim.epochs=1", "optim.warmup_epochs=1", f"run.out_dir={tmp_path}",
                                      "run.name=r", "run.progress=false", "run.plots=false", "data.train_limit=256",
                                      "data.test_limit=64"]))
    runtime = json.loads((tmp_path / "r" / "summary.json").read_text())["runtime"]
    assert runtime == resolve(load_config(None, ["run.plots=false", "run.progress=false"]), Environment.read()).record()
