"""Every `auto` of a run decided in one place (docs/config.md, "Runtime: every `auto` decided once").

`resolve(cfg, env)` turns the config's settings and the machine (`Environment`: CUDA devices,
bf16, the torchrun processes, CPU cores, matplotlib, TensorBoard, wandb, DALI, a terminal) into one frozen
`Runtime`: device, AMP and its grad scaler, compile and its mode, CUDA graphs, the static (GPU)
code paths, sync batch norm, pipeline and workers, threads, progress bar, plots, and the torchrun
processes (`World`). It raises every refusal that depends on the machine, before any data is read.
`decide(cfg)` reads this machine and resolves, once, before anything else reads it: the processes
join with it (act/step/distributed.py `join`), `prepare` (act/run/build.py) builds the run from it,
and `summary.json` records it whole (`runtime`). tests/test_runtime.py is its table of (setting,
machine) -> decision.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from act.config import Config
from act.datasets.registry import spec_of
from act.errors import ActError
from act.run import plots
from act.step.distributed import World, world_from_env


@dataclass(frozen=True)
class Environment:
    """What the machine offers this process, read once (`read`); tests build their own."""

    cuda_devices: int = 0  # CUDA devices this process sees
    bf16: bool = False  # the GPU computes bf16
    world: World = World()  # this process among the run's processes (torchrun's environment)
    cpus: int = 1
    threads: int = 1  # torch's CPU threads by default
    matplotlib: bool = False
    tensorboard: bool = False
    wandb: bool = False
    dali: bool = False
    terminal: bool = False  # stdout is a terminal

    @classmethod
    def read(cls) -> "Environment":
        from pipelines import dali_installed

        cuda = torch.cuda.is_available()
        return cls(cuda_devices=torch.cuda.device_count() if cuda else 0, bf16=cuda and torch.cuda.is_bf16_supported(),
                   world=world_from_env(), cpus=os.cpu_count() or 1, threads=torch.get_num_threads(),
                   matplotlib=plots.available(), tensorboard=importlib.util.find_spec("tensorboard") is not None,
                   wandb=importlib.util.find_spec("wandb") is not None, dali=dali_installed(),
                   terminal=sys.stdout.isatty())


@dataclass(frozen=True)
class Runtime:
    """How a run executes on this machine: every `auto` of its config decided."""

    device: str  # "cpu", "cuda", "cuda:N" (under torchrun the GPU of LOCAL_RANK)
    amp: str  # bf16 | fp16 | off
    grad_scaler: bool  # fp16 on CUDA
    compile: bool
    compile_strict: bool  # run.compile=true: a failed compile stops the run (auto: the step stays eager)
    compile_mode: str
    cuda_graph: bool  # each phase's step captured (a failed capture falls back unless cuda_graph_strict)
    cuda_graph_strict: bool  # run.cuda_graph=true: a failed capture stops the run
    view_graphs: bool  # the view passes built on the device replayed as CUDA graphs (run.cuda_graph != false)
    cuda_paths: bool  # the code a GPU runs: capturable step from static buffers, static views
    sync_bn: bool
    pipeline: str
    workers: int
    threads: int  # CPU threads torch uses
    progress: bool
    plots: bool
    world: World = World()  # this process among the run's processes (the Environment's)

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.amp)

    def record(self) -> dict:
        """Every decision, the world as its size and this process's rank."""
        decisions = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "world"}
        return {**decisions, "world_size": self.world.size, "rank": self.world.rank}


def decide(cfg: Config, cuda_paths: bool | None = None) -> Runtime:
    """The Runtime of `cfg` on this machine, read here (`resolve` says what `cuda_paths` does)."""
    return resolve(cfg, Environment.read(), cuda_paths)


def resolve(cfg: Config, env: Environment, cuda_paths: bool | None = None) -> Runtime:
    """The Runtime of `cfg` on `env`. `cuda_paths` forces the GPU's code paths on or off (the
    capturable step from static buffers, autocast without its cache, the static strong view: the
    tests and the GPU proxy run them on the CPU to prove that code there); None: on for CUDA."""
    r, world = cfg.run, env.world
    device = resolve_device(r.device, env)
    cuda = device.startswith("cuda")
    amp, scaler = resolve_amp(r.amp, cuda, env.bf16)
    compile = r.compile == "true" or (r.compile == "auto" and cuda and world.size == 1)
    check_logs(cfg, env)
    return Runtime(
        device=device, amp=amp, grad_scaler=scaler, compile=compile, compile_strict=r.compile == "true",
        compile_mode=r.compile_mode,
        cuda_graph=resolve_cuda_graph(cfg, device, scaler, compile, world.size),
        cuda_graph_strict=r.cuda_graph == "true", view_graphs=r.cuda_graph != "false",
        cuda_paths=cuda if cuda_paths is None else cuda_paths, sync_bn=resolve_sync_bn(r.sync_bn, cuda, world.size),
        pipeline=resolve_pipeline(cfg, cuda, env.dali),
        workers=cfg.pipeline.workers if cfg.pipeline.workers >= 0 else min(8, env.cpus),
        threads=r.threads or env.threads,
        progress=(r.progress == "true" or (r.progress == "auto" and env.terminal)) and world.main,
        plots=resolve_plots(r.plots, env.matplotlib), world=world)


def resolve_device(name: str, env: Environment) -> str:
    """run.device; under torchrun a CUDA run uses the GPU of LOCAL_RANK."""
    world = env.world
    if name == "auto":
        name = "cuda" if env.cuda_devices else "cpu"
    if not name.startswith("cuda"):
        return name
    if not env.cuda_devices:
        raise ActError(f"run.device={name} but this machine has no CUDA device; use run.device=cpu or auto")
    if world.size == 1:
        return name
    if name != "cuda":
        raise ActError(f"run.device={name} names one GPU, but under torchrun each process uses the GPU of its "
                       f"LOCAL_RANK; use run.device=cuda or auto")
    if world.local_rank >= env.cuda_devices:
        raise ActError(f"LOCAL_RANK={world.local_rank} but this machine has {env.cuda_devices} CUDA devices; "
                       f"start at most {env.cuda_devices} processes per machine (torchrun --nproc_per_node)")
    return f"cuda:{world.local_rank}"


def resolve_amp(amp: str, cuda: bool, bf16: bool) -> tuple[str, bool]:
    """(run.amp decided: bf16 | fp16 | off, whether a grad scaler is needed)."""
    if amp == "auto":
        amp = ("bf16" if bf16 else "fp16") if cuda else "off"
    if amp == "fp16" and not cuda:
        raise ActError("run.amp=fp16 needs a CUDA device; on CPU use run.amp=bf16 or off")
    return amp, amp == "fp16"


def makes_own_cuda_graphs(compile_mode: str) -> bool:
    """Whether torch.compile's mode captures CUDA graphs of its own, asked of inductor (reduce-overhead
    and max-autotune do; a list of names would miss a mode that turns them on)."""
    from torch._inductor import list_mode_options

    return bool(list_mode_options(compile_mode).get("triton.cudagraphs", False))


def resolve_cuda_graph(cfg: Config, device: str, scaler: bool, compile: bool, ranks: int) -> bool:
    """run.cuda_graph: auto is on for CUDA unless something rules capture out; true refuses (one
    line) where it cannot be honoured. run.compile under DDP stays off with auto until a measurement
    says compiling the DDP-wrapped step pays (it has never run); true compiles there too."""
    obstacles = []
    if not device.startswith("cuda"):
        obstacles.append(f"a CUDA device (run.device={cfg.run.device} gives {device})")
    if scaler:
        obstacles.append("no fp16 loss scaling (it reads the scale on the host each step; use run.amp=bf16 or off)")
    if compile and makes_own_cuda_graphs(cfg.run.compile_mode):
        obstacles.append(f"no run.compile_mode={cfg.run.compile_mode} (it makes CUDA graphs of its own; "
                         f"max-autotune-no-cudagraphs or default leave them to run.cuda_graph)")
    if ranks > 1:
        obstacles.append(f"one process, not {ranks} (DDP's gradient reducer runs host-side bookkeeping in each "
                         f"backward, which a replayed graph would skip)")
    if cfg.run.cuda_graph == "true" and obstacles:
        raise ActError(f"run.cuda_graph=true needs {obstacles[0]}")
    return cfg.run.cuda_graph == "true" or (cfg.run.cuda_graph == "auto" and not obstacles)


def resolve_sync_bn(setting: str, cuda: bool, ranks: int) -> bool:
    """run.sync_bn: auto is on for CUDA runs of several processes; true refuses the CPU."""
    if ranks == 1:
        return False
    if setting == "true" and not cuda:
        raise ActError("run.sync_bn=true needs CUDA devices (PyTorch's SyncBatchNorm runs on GPUs only; this run "
                       "is on the CPU); use run.sync_bn=auto or false")
    return setting == "true" or (setting == "auto" and cuda)


def resolve_pipeline(cfg: Config, cuda: bool, dali: bool) -> str:
    """pipeline.name: auto is `tensor` for array data sets, else by what pipeline.path holds:
    `dali` on CUDA (a conversion's manifest, DALI installed), `ffcv` (train.beton), `reference`."""
    name, path = cfg.pipeline.name, cfg.pipeline.path
    if name != "auto":
        return name
    if not path and not spec_of(cfg.data.name).files:
        return "tensor"
    if path and (Path(path) / "manifest.json").is_file() and cuda and dali:
        return "dali"
    if path and (Path(path) / "train.beton").is_file():
        return "ffcv"
    return "reference"


def check_logs(cfg: Config, env: Environment) -> None:
    """TensorBoard and W&B, where the config asks for them, are installed (wandb is no dependency)."""
    if cfg.run.tensorboard and not env.tensorboard:
        raise ActError('run.tensorboard=true needs the tensorboard package: pip install "tensorboard>=2.14"')
    if cfg.run.wandb != "off" and not env.wandb:
        raise ActError(f'run.wandb={cfg.run.wandb} needs the wandb package: pip install "wandb>=0.19.10" '
                       f"(or run.wandb=off)")


def resolve_plots(setting: str, matplotlib: bool) -> bool:
    if setting == "true" and not matplotlib:
        raise ActError('run.plots=true needs matplotlib: pip install "matplotlib>=3.7" (or run.plots=auto)')
    return setting == "true" or (setting == "auto" and matplotlib)
