"""Building a run from its config: data and noise, pipeline, both networks, optimisers, steps.

`prepare` is the one entry point (act/run/loop.py calls it for a new and a resumed run). How the
run executes on this machine is its Runtime (act/run/runtime.py: every `auto` decided there); here
are the fused SGD of both nets and whether a model with batch norm can train on the data at all.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from act.config import Config, OptimConfig
from act.datasets import limit, read_data
from act.datasets.base import Source
from act.datasets.registry import clean_known
from act.errors import ActError
from act.method import functions as M
from act.method import registry as methods
from act.method.lr import build_lr_plan, build_ntm_plan
from act.method.noise import corrupt, noise_report, transition_matrix
from act.models import create_model
from act.run.folder import RunFolder
from act.run.records import noise_settings
from act.run.runtime import Runtime
from act.step import distributed, engine
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
    rtm_plan: list[float]
    ntm_plan: list[float]
    history: list[dict]
    clean_known: bool
    noise: dict
    stats: engine.EpochStats
    start_epoch: int = 0
    fingerprint: dict | None = None  # checkpoint.fingerprint of the data, checked on resume
    world: distributed.World = distributed.World()  # the processes of a torchrun run (act/step/distributed.py)
    runtime: Runtime | None = None  # every `auto` of the config decided (act/run/runtime.py)
    # The RNG states its checkpoints hold (act/run/checkpoint.py `rng_state`); None: the process's.
    # A packed run's own (act/pack/run.py): those its build or restore left, before the next run's.
    rng: dict | None = None

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.dir)


def prepare(cfg: Config, rt: Runtime, run_dir: Path | None = None, source: Source | None = None,
            weights: bool = True) -> Run:
    """Build data, noise, pipeline, networks and optimisers; write the run's inputs into a new
    run folder unless `run_dir` (a resumed run's) is given. `weights=False` leaves
    model.pretrained unread (a resume whose checkpoint holds the nets: the file may be gone).

    How it runs on this machine was decided before, once: `rt` (act/run/runtime.py `decide`: every
    `auto`, every refusal that depends on the machine); its processes join here unless they have.
    `source` replaces reading the data of the config (benchmarks on synthetic data)."""
    world = rt.world
    distributed.join(world, rt.device, cfg.run.dist_timeout)
    device, cuda_paths = rt.torch_device, rt.cuda_paths
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    source = read_data(cfg) if source is None else limit(source, cfg)  # data.*_limit hold for a given Source too
    true = source.train.labels
    noisy = apply_noise(cfg, true, source.label_space) if source.train.noisy is None else source.train.noisy.copy()
    if noisy.max() >= source.num_classes:
        raise ActError(f"noisy labels reach class {noisy.max()} but the model has {source.num_classes} classes")
    outputs = head_outputs(cfg, source)
    report = noise_report(true, noisy)

    batch_size = distributed.rank_batch(cfg, world)
    method = methods.spec_of(cfg.method.name)
    pipeline = build_pipeline(rt.pipeline, source, noisy, batch_size=batch_size, device=device,
                              seed=cfg.run.seed, workers=rt.workers, path=cfg.pipeline.path,
                              test_batch_size=cfg.pipeline.test_batch_size, strong=method.strong_view(cfg.method),
                              static=cuda_paths, views=cfg.pipeline.views, shard=(world.rank, world.size),
                              graphs=rt.view_graphs, graphs_strict=rt.cuda_graph_strict)

    torch.manual_seed(cfg.run.seed)
    random.seed(cfg.run.seed)
    pretrained = cfg.model.pretrained if weights else None
    nets = [create_model(cfg.model.name, outputs, source.channels, source.image_size, pretrained) for _ in range(2)]
    rtm, ntm = (net.to(device) for net in nets)
    if device.type == "cuda":
        rtm, ntm = (net.to(memory_format=torch.channels_last) for net in (rtm, ntm))
    rtm, ntm = (distributed.wrap(world, net, device, rt.sync_bn) for net in (rtm, ntm))
    o = cfg.optim
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolutions once
    ctx = step_context(cfg, rt, rtm, ntm, torch.as_tensor(noisy, device=device), outputs, world)
    rtm_plan = build_lr_plan(o.lr, o.epochs, o.warmup_epochs, o.warmup_lr, o.lr_decay)
    ntm_plan = build_ntm_plan(o.ntm_lr_plan, o.lr, o.lr1, o.epochs, o.warmup_epochs, o.warmup_lr, o.lr_decay)

    report.update(noise_settings(cfg))
    if run_dir is None:
        run_dir = distributed.on_main(world, lambda: RunFolder.create(cfg, noisy, true, report).path)
    steps = engine.build_steps(ctx, method.losses, batch_size, rt.compile, rt.compile_mode, rt.cuda_graph,
                               static_inputs=cuda_paths, strict=rt.cuda_graph_strict, compile_strict=rt.compile_strict)
    return Run(cfg=cfg, dir=run_dir, device=device, ctx=ctx, steps=steps, pipeline=pipeline, rtm_plan=rtm_plan,
               ntm_plan=ntm_plan, history=[], clean_known=clean_known(cfg.data.name), noise=report,
               stats=engine.EpochStats(device), world=world, runtime=rt)


def step_context(cfg: Config, rt: Runtime, rtm: torch.nn.Module, ntm: torch.nn.Module, noisy: torch.Tensor,
                 num_classes: int, world: distributed.World = distributed.World()) -> engine.StepContext:
    """What a step needs besides the batch, from the config and its Runtime: both nets, their
    optimisers, a new memory bank over the noisy labels, the method's settings, autocast and scaler."""
    rtm_opt, ntm_opt = build_optimisers(rtm, ntm, cfg.optim, rt.torch_device)
    m, a = cfg.method, cfg.method.ablation
    return engine.StepContext(
        rtm=rtm, ntm=ntm, rtm_opt=rtm_opt, ntm_opt=ntm_opt, bank=M.Bank.create(noisy, num_classes), tau=m.tau,
        selection=m.selection, mine=a.mining, reweight=a.reweight, consistency=a.consistency,
        label_smoothing=m.label_smoothing, fuse_views=m.fuse_views, amp_dtype=rt.amp_dtype,
        scaler=torch.amp.GradScaler("cuda") if rt.grad_scaler else None, autocast_cache=not rt.cuda_paths,
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
    rtm_opt, ntm_opt = (torch.optim.SGD(net.parameters(), lr=torch.tensor(lr, device=device), momentum=o.momentum,
                                  weight_decay=o.weight_decay, nesterov=o.nesterov, fused=True)
                  for net, lr in ((rtm, o.lr), (ntm, o.lr1)))
    return rtm_opt, ntm_opt


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
