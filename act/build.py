"""Building a run from its config: data and noise, pipeline, both networks, optimisers, steps.

`prepare` is the one entry point (act/train.py calls it for a new and a resumed run); the
rules that decide how a run executes on its device live beside it: the device, AMP, compile
and CUDA-graph settings (`auto` and the one-line refusals of `true`), the fused SGD of both
nets, and whether a model with batch norm can train on the data at all.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from act import distributed, engine, methods
from act import method as M
from act.config import Config, OptimConfig
from act.datasets import limit, read_data
from act.datasets.base import Source
from act.datasets.registry import clean_known, spec_of
from act.errors import ActError
from act.lr import build_lr_plan, build_ntm_plan
from act.models import NO_WEIGHTS, create_model
from act.noise import corrupt, noise_report, transition_matrix
from act.results import noise_settings
from act.rundir import write_inputs
from pipelines import build_pipeline


@dataclass
class Run:
    """Everything a run holds between epochs."""

    cfg: Config
    dir: Path
    device: torch.device
    ctx: engine.StepContext
    steps: dict[str, engine.PhaseStep]
    pipeline: object
    plan0: list[float]
    plan1: list[float]
    history: list[dict]
    clean_known: bool
    noise: dict
    stats: engine.EpochStats
    start_epoch: int = 0
    fingerprint: dict | None = None  # checkpoint.fingerprint of the data, checked on resume
    world: distributed.World = distributed.World()  # the processes of a torchrun run (act/distributed.py)


def prepare(cfg: Config, run_dir: Path | None = None, source: Source | None = None,
            cuda_paths: bool | None = None) -> Run:
    """Build data, noise, pipeline, networks and optimisers; write the run's inputs into a new
    run folder unless `run_dir` (a resumed run's) is given.

    `source` replaces reading the data of the config (benchmarks on synthetic data). `cuda_paths`
    (default: on for CUDA) picks the code the GPU runs: the capturable step from static
    buffers, autocast without its cache, the static strong view. The tests and the
    GPU proxy benchmark force it on the CPU to prove that code there."""
    world = distributed.join(cfg.run)
    device = distributed.place(world, resolve_device(cfg.run.device))
    cuda_paths = device.type == "cuda" if cuda_paths is None else cuda_paths
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    source = read_data(cfg) if source is None else limit(source, cfg)  # data.*_limit hold for a given Source too
    true = source.train.labels
    noisy = apply_noise(cfg, true, source.label_space)
    if noisy.max() >= source.num_classes:
        raise ActError(f"noisy labels reach class {noisy.max()} but the model has {source.num_classes} classes")
    outputs = head_outputs(cfg, source)
    report = noise_report(true, noisy)

    _, needs_scaler = resolve_amp(cfg.run.amp, device)  # refuses fp16 off CUDA before anything is built
    batch_size = distributed.rank_batch(cfg, world)
    method = methods.spec_of(cfg.method.name)
    pipeline = build_pipeline(cfg.pipeline.name, source, noisy, batch_size=batch_size, device=device,
                              seed=cfg.run.seed, workers=cfg.pipeline.workers, path=cfg.pipeline.path,
                              test_batch_size=cfg.pipeline.test_batch_size, strong=method.strong_view(cfg.method),
                              static=cuda_paths, views=cfg.pipeline.views, shard=(world.rank, world.size),
                              cuda_graph=cfg.run.cuda_graph)

    torch.manual_seed(cfg.run.seed)
    random.seed(cfg.run.seed)
    nets = [create_model(cfg.model.name, outputs, source.channels, source.image_size, cfg.model.pretrained)
            for _ in range(2)]
    rtm, ntm = (net.to(device) for net in nets)
    if device.type == "cuda":
        rtm, ntm = (net.to(memory_format=torch.channels_last) for net in (rtm, ntm))
    sync_bn = distributed.sync_bn_enabled(cfg, world, device)
    rtm, ntm = (distributed.wrap(world, net, device, sync_bn) for net in (rtm, ntm))
    o = cfg.optim
    cuda_graph = cuda_graph_enabled(cfg, device, needs_scaler, world.size)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolutions once
    ctx = step_context(cfg, rtm, ntm, torch.as_tensor(noisy, device=device), outputs, device,
                       cuda_paths, world)
    plan0 = build_lr_plan(o.lr, o.epochs, o.warmup_epochs, o.warmup_lr, o.lr_decay)
    plan1 = build_ntm_plan(o.ntm_lr_plan, o.lr, o.lr1, o.epochs, o.warmup_epochs, o.warmup_lr, o.lr_decay)

    report.update(noise_settings(cfg))
    if run_dir is None:
        run_dir = distributed.on_main(world, lambda: write_inputs(cfg, noisy, true, report))
    steps = engine.build_steps(ctx, method.losses, batch_size, compile_enabled(cfg.run.compile, device, world.size),
                               cfg.run.compile_mode, cuda_graph, static_inputs=cuda_paths,
                               strict=cfg.run.cuda_graph == "true")
    return Run(cfg=cfg, dir=run_dir, device=device, ctx=ctx, steps=steps, pipeline=pipeline, plan0=plan0,
               plan1=plan1, history=[], clean_known=clean_known(cfg.data.name), noise=report,
               stats=engine.EpochStats(device), world=world)


def step_context(cfg: Config, rtm: torch.nn.Module, ntm: torch.nn.Module, noisy: torch.Tensor, num_classes: int,
                 device: torch.device, cuda_paths: bool = False,
                 world: distributed.World = distributed.World()) -> engine.StepContext:
    """What a step needs besides the batch, from the config: both nets, their optimisers, a new
    memory bank over the noisy labels, the method's settings, autocast and scaler (run.amp)."""
    amp_dtype, needs_scaler = resolve_amp(cfg.run.amp, device)
    opt0, opt1 = build_optimisers(rtm, ntm, cfg.optim, device)
    m, a = cfg.method, cfg.method.ablation
    return engine.StepContext(
        rtm=rtm, ntm=ntm, opt0=opt0, opt1=opt1, bank=M.Bank.create(noisy, num_classes), tau=m.tau,
        selection=m.selection, mine=a.mining, reweight=a.reweight, consistency=a.consistency,
        label_smoothing=m.label_smoothing, fuse_views=m.fuse_views, amp_dtype=amp_dtype,
        scaler=torch.amp.GradScaler("cuda") if needs_scaler else None, autocast_cache=not cuda_paths,
        ranks=world.size, all_sum=distributed.all_sum(world))


def head_outputs(cfg: Config, source: Source) -> int:
    """The outputs of both nets' heads, and the width of the bank's EMA: model.num_outputs, or
    the data set's classes. Outputs beyond the classes are never a label, so a prediction there
    is wrong for accuracy and selection, and label smoothing spreads mass over them too, as
    the public Food-101N script's 200 outputs for 101 classes do."""
    outputs = cfg.model.num_outputs or source.num_classes
    if outputs < source.num_classes:
        raise ActError(f"model.num_outputs={outputs} is below the {source.num_classes} classes of {cfg.data.name}; "
                       f"give at least {source.num_classes} (or leave it unset)")
    return outputs


def check_weights(cfg: Config) -> None:
    """Refuse a new run of a data set the paper trains from pretrained weights when model.pretrained
    is unset: it would train from scratch, look normal and reach far less."""
    weights = spec_of(cfg.data.name).weights
    if weights and cfg.model.pretrained is None:
        raise ActError(f"model.pretrained is unset, but the paper's {cfg.data.name} runs start from {weights}: "
                       f"give model.pretrained=<that local file>, or model.pretrained={NO_WEIGHTS} to train from "
                       f"scratch on purpose")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ActError(f"run.device={name} but this machine has no CUDA device; use run.device=cpu or auto")
    return torch.device(name)


def resolve_amp(amp: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a grad scaler is needed)."""
    if amp == "auto":
        if device.type != "cuda":
            return None, False
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if amp == "off":
        return None, False
    if amp == "bf16":
        return torch.bfloat16, False
    if device.type != "cuda":
        raise ActError("run.amp=fp16 needs a CUDA device; on CPU use run.amp=bf16 or off")
    return torch.float16, True


def apply_noise(cfg: Config, true: np.ndarray, label_space: int) -> np.ndarray:
    n = cfg.data.noise
    if n.type == "none" and n.openset_ratio == 0:
        return true.copy()
    kind = "symmetric" if n.type == "none" else n.type
    ratio = 0.0 if n.type == "none" else n.closeset_ratio
    return corrupt(true, transition_matrix(kind, ratio, n.openset_ratio, label_space), n.seed)


def build_optimisers(rtm: torch.nn.Module, ntm: torch.nn.Module, o: OptimConfig,
                     device: torch.device) -> tuple[torch.optim.SGD, torch.optim.SGD]:
    """SGD of the RTM (optim.lr) and of the NTM (optim.lr1).

    Learning rates are 0-d device tensors (filled per epoch): a captured step reads them there.
    One fused kernel per update on every device: it reads the lr on the device (the multi-tensor
    path reads it on the host, and rounds differently), and it is the faster one on the CPU too."""
    opt0, opt1 = (torch.optim.SGD(net.parameters(), lr=torch.tensor(lr, device=device), momentum=o.momentum,
                                  weight_decay=o.weight_decay, nesterov=o.nesterov, fused=True)
                  for net, lr in ((rtm, o.lr), (ntm, o.lr1)))
    return opt0, opt1


def compile_enabled(setting: str, device: torch.device, ranks: int = 1) -> bool:
    """run.compile: auto is on for CUDA in one process. Under DDP it stays off until a measurement
    says compiling the DDP-wrapped step pays (it has never run); true compiles there too."""
    return setting == "true" or (setting == "auto" and device.type == "cuda" and ranks == 1)


def makes_own_cuda_graphs(compile_mode: str) -> bool:
    """Whether torch.compile's mode captures CUDA graphs of its own, asked of inductor (reduce-overhead
    and max-autotune do; a list of names would miss a mode that turns them on)."""
    from torch._inductor import list_mode_options

    return bool(list_mode_options(compile_mode).get("triton.cudagraphs", False))


def cuda_graph_enabled(cfg: Config, device: torch.device, needs_scaler: bool, ranks: int = 1) -> bool:
    """run.cuda_graph: auto is on for CUDA unless something else rules capture out; true
    refuses (one line) where it cannot be honoured."""
    setting = cfg.run.cuda_graph
    obstacles = []
    if device.type != "cuda":
        obstacles.append(f"a CUDA device (run.device={cfg.run.device} gives {device})")
    if needs_scaler:
        obstacles.append("no fp16 loss scaling (it reads the scale on the host each step; use run.amp=bf16 or off)")
    if compile_enabled(cfg.run.compile, device, ranks) and makes_own_cuda_graphs(cfg.run.compile_mode):
        obstacles.append(f"no run.compile_mode={cfg.run.compile_mode} (it makes CUDA graphs of its own; "
                         f"max-autotune-no-cudagraphs or default leave them to run.cuda_graph)")
    if ranks > 1:
        obstacles.append(f"one process, not {ranks} (DDP's gradient reducer runs host-side bookkeeping in each "
                         f"backward, which a replayed graph would skip)")
    if setting == "true" and obstacles:
        raise ActError(f"run.cuda_graph=true needs {obstacles[0]}")
    return setting == "true" or (setting == "auto" and not obstacles)


def has_batch_norm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def check_trainable(run: Run) -> None:
    """Refuse a run whose every batch would be skipped (train.train_batches)."""
    cfg, size = run.cfg, len(run.pipeline.source.train)
    if has_batch_norm(run.ctx.rtm) and min(cfg.optim.batch_size, size) < 2:
        key = f"optim.batch_size={cfg.optim.batch_size}" if cfg.optim.batch_size < 2 else \
            f"data.train_limit={cfg.data.train_limit} ({size} training sample)"
        raise ActError(f"{key}: model {cfg.model.name} has batch norm, which cannot train on batches of one "
                       f"sample; use at least 2")
