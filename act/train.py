"""One run: data and noise, both networks, the epoch loop, logging, checkpoints and results.

Run folder (one per run, never overwritten by accident):
  config.yaml      the resolved config
  labels.npz       noisy and true training labels (`noisy`, `true`); noise.json: the actual rate
  metrics.jsonl    one JSON object per epoch
  checkpoint.pt    the last completed epoch, with its checksum and the data's fingerprint (act/checkpoint.py)
  .lock            held (flock) by the process writing the folder (act/rundir.py)
  summary.json     last-10 mean/std, best, final of both nets, selection quality, epoch times
The per-epoch table and the closing summary printed on the console: act/console.py.
"""
from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from act import checkpoint, distributed, engine, methods
from act import method as M
from act.config import Config, OptimConfig, dump_yaml, load_config
from act.console import format_header, format_row, print_summary, use_progress
from act.convert import read_converted_for
from act.datasets import read_source
from act.datasets.base import Source
from act.datasets.registry import clean_known
from act.errors import ActError
from act.lr import build_lr_plan, build_ntm_plan
from act.metrics import last_k_summary, selection_quality
from act.models import create_model
from act.noise import corrupt, noise_report, transition_matrix
from act.outputs import Outputs
from act.rundir import acquire, atomic_write, new_run_dir, release, save_labels, write_text
from pipelines import build_pipeline

# Keys that may change when a run is resumed; anything else would change the experiment.
# run.threads is not among them: the thread count changes the order of float reductions.
RESUME_OVERRIDABLE = ("optim.epochs", "run.device", "run.progress", "pipeline.workers", "pipeline.test_batch_size",
                      "run.plots", "run.tensorboard", "run.dist_timeout")
CHECKPOINT = "checkpoint.pt"


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
    """Build data, noise, pipeline, networks and optimisers; write the run's inputs.

    `source` replaces reading `data.*` from disk (benchmarks on synthetic data). `cuda_paths`
    (default: on for CUDA) picks the code the GPU runs: the capturable step from static
    buffers, autocast without its cache, the static strong view. The tests and the
    GPU proxy benchmark force it on the CPU to prove that code there."""
    world = distributed.join(cfg.run)
    device = distributed.place(world, resolve_device(cfg.run.device))
    cuda_paths = device.type == "cuda" if cuda_paths is None else cuda_paths
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    if source is None and cfg.pipeline.path:
        source = read_converted_for(cfg)
    if source is None:
        source = read_source(cfg.data.name, cfg.data.root, cfg.data.image_size, cfg.data.noise.openset_ratio)
    source.train = source.train.head(cfg.data.train_limit)
    source.test = source.test.head(cfg.data.test_limit)
    if len(source.train) == 0 or len(source.test) == 0:
        raise ActError(f"data set {cfg.data.name} has {len(source.train)} training and {len(source.test)} test samples; both must be > 0")
    true = source.train.labels
    noisy = apply_noise(cfg, true, source.label_space)
    if noisy.max() >= source.num_classes:
        raise ActError(f"noisy labels reach class {noisy.max()} but the model has {source.num_classes} classes")
    source.noisy = noisy
    report = noise_report(true, noisy)

    amp_dtype, needs_scaler = resolve_amp(cfg.run.amp, device)
    workers = cfg.pipeline.workers if cfg.pipeline.workers >= 0 else min(8, os.cpu_count() or 1)
    batch_size = distributed.rank_batch(cfg, world)
    pipeline = build_pipeline(cfg.pipeline.name, source, noisy, batch_size=batch_size, device=device,
                              seed=cfg.run.seed, workers=workers, path=cfg.pipeline.path,
                              test_batch_size=cfg.pipeline.test_batch_size,
                              strong=methods.spec_of(cfg.method.name).strong_view(cfg.method),
                              static=cuda_paths, views=cfg.pipeline.views, shard=(world.rank, world.size))

    torch.manual_seed(cfg.run.seed)
    random.seed(cfg.run.seed)
    nets = [create_model(cfg.model.name, source.num_classes, source.channels, source.image_size, cfg.model.pretrained)
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
    opts = build_optimisers(rtm, ntm, o, device)
    bank = M.Bank.create(torch.as_tensor(noisy, device=device), source.num_classes)
    a = cfg.method.ablation
    ctx = engine.StepContext(
        rtm=rtm, ntm=ntm, opt0=opts[0], opt1=opts[1], bank=bank, tau=cfg.method.tau,
        selection=cfg.method.selection, mine=a.mining, reweight=a.reweight, consistency=a.consistency,
        label_smoothing=cfg.method.label_smoothing, fuse_views=cfg.method.fuse_views, amp_dtype=amp_dtype,
        scaler=torch.amp.GradScaler("cuda") if needs_scaler else None, autocast_cache=not cuda_paths,
        ranks=world.size, all_sum=distributed.all_sum(world))
    plan0 = build_lr_plan(o.lr, o.epochs, o.warmup_epochs, o.warmup_lr, o.lr_decay)
    plan1 = build_ntm_plan(o.ntm_lr_plan, o.lr, o.lr1, o.epochs, o.warmup_epochs, o.warmup_lr, o.lr_decay)

    if run_dir is None:
        report.update(noise_settings(cfg))
        run_dir = distributed.on_main(world, lambda: write_inputs(cfg, noisy, true, report))
    steps = engine.build_steps(ctx, batch_size, compile_enabled(cfg.run.compile, device),
                               cfg.run.compile_mode, cuda_graph, static_inputs=cuda_paths)
    return Run(cfg=cfg, dir=run_dir, device=device, ctx=ctx, steps=steps, pipeline=pipeline, plan0=plan0,
               plan1=plan1, history=[], clean_known=clean_known(cfg.data.name), noise=report,
               stats=engine.EpochStats(device), world=world)


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


def write_inputs(cfg: Config, noisy: np.ndarray, true: np.ndarray, report: dict) -> Path:
    """A new run folder (locked) with the run's config, labels and noise report."""
    run_dir = new_run_dir(cfg)
    write_text(run_dir / "config.yaml", dump_yaml(cfg))
    atomic_write(run_dir / "labels.npz", lambda p: save_labels(p, noisy, true))
    write_text(run_dir / "noise.json", json.dumps(report, indent=2))
    return run_dir


def compile_enabled(setting: str, device: torch.device) -> bool:
    return setting == "true" or (setting == "auto" and device.type == "cuda")


def cuda_graph_enabled(cfg: Config, device: torch.device, needs_scaler: bool, ranks: int = 1) -> bool:
    """run.cuda_graph: auto is on for CUDA unless something else rules capture out; true
    refuses (one line) where it cannot be honoured."""
    setting = cfg.run.cuda_graph
    obstacles = []
    if device.type != "cuda":
        obstacles.append(f"a CUDA device (run.device={cfg.run.device} gives {device})")
    if needs_scaler:
        obstacles.append("no fp16 loss scaling (it reads the scale on the host each step; use run.amp=bf16 or off)")
    if cfg.run.compile_mode == "reduce-overhead" and compile_enabled(cfg.run.compile, device):
        obstacles.append("no run.compile_mode=reduce-overhead (it makes CUDA graphs of its own)")
    if ranks > 1:
        obstacles.append(f"one process, not {ranks} (DDP's gradient reducer runs host-side bookkeeping in each "
                         f"backward, which a replayed graph would skip)")
    if setting == "true" and obstacles:
        raise ActError(f"run.cuda_graph=true needs {obstacles[0]}")
    return setting == "true" or (setting == "auto" and not obstacles)


def phase_of(cfg: Config, epoch: int) -> str:
    return methods.spec_of(cfg.method.name).phase(epoch, cfg.optim.warmup_epochs)


def train_epoch(run: Run, epoch: int, progress: bool) -> dict:
    """One epoch of training and the test pass; returns the epoch's metrics record."""
    cfg, ctx = run.cfg, run.ctx
    phase = phase_of(cfg, epoch)
    engine.set_lrs(ctx, run.plan0[epoch], run.plan1[epoch])
    ctx.set_epoch(epoch)
    for name, other in run.steps.items():
        if name != phase:
            other.release()  # a finished phase's graph holds memory the next one may need
    step = run.steps[phase]
    stats = run.stats
    stats.reset()
    start = time.perf_counter()
    batches = train_batches(run, epoch)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, total=run.pipeline.steps_per_epoch(), leave=False, dynamic_ncols=True,
                       desc=f"epoch {epoch} {phase}")
    for batch in batches:
        step(batch, stats)
    distributed.finish_epoch(run.world, ctx, stats, run.pipeline, epoch)
    totals = stats.read()
    train_seconds = time.perf_counter() - start
    acc0, acc1 = distributed.evaluate(run.world, [ctx.rtm, ctx.ntm], run.pipeline.test_batches(), ctx.amp_dtype)
    seconds = time.perf_counter() - start
    quality = selection_quality(totals["selected"], totals["selected_clean"], totals["clean"]) if run.clean_known \
        else {"precision": None, "recall": None, "f1": None}
    samples = int(totals["samples"])
    return {
        "epoch": epoch, "phase": phase, "lr": run.plan0[epoch], "lr1": run.plan1[epoch],
        "rtm_test_acc": acc0, "ntm_test_acc": acc1,
        "sel_precision": quality["precision"], "sel_recall": quality["recall"], "sel_f1": quality["f1"],
        "selected_frac": totals["selected"] / samples if samples else None,
        "mining": totals["mining_steps"] / totals["steps"] if phase == "robust" and totals["steps"] else None,
        "rtm_train_acc": 100.0 * totals["correct0"] / samples if samples else None,
        "ntm_train_acc": 100.0 * totals["correct1"] / samples if samples else None,
        "rtm_loss": totals["loss0"] / totals["steps"] if totals["steps"] else None,
        "ntm_loss": totals["loss1"] / totals["steps"] if totals["steps"] else None,
        "samples_seen": samples,
        "epoch_seconds": seconds, "train_seconds": train_seconds,
        "images_per_s": samples / train_seconds if train_seconds > 0 else None,
    }


def train_batches(run: Run, epoch: int):
    """The pipeline's batches of `epoch`, less a batch of one sample when the model has batch
    norm: one sample has no batch statistics (BatchNorm1d refuses it in training mode), so
    that sample sits the epoch out and `samples_seen` counts it out. The public code's loader
    keeps the last partial batch too, and would fail there; runs without such a batch are
    unchanged, and a resumed run skips the same sample (the order is a function of the seed
    and the epoch)."""
    batches = run.pipeline.train_batches(epoch)
    if run.world.size > 1:
        return distributed.padded(batches, run.pipeline)  # pipelines/shard.py already keeps batches of one out
    if not has_batch_norm(run.ctx.rtm):
        return batches
    return (batch for batch in batches if len(batch.index) > 1)


def has_batch_norm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def check_trainable(run: Run) -> None:
    """Refuse a run whose every batch would be skipped (`train_batches`)."""
    cfg, size = run.cfg, len(run.pipeline.source.train)
    if has_batch_norm(run.ctx.rtm) and min(cfg.optim.batch_size, size) < 2:
        key = f"optim.batch_size={cfg.optim.batch_size}" if cfg.optim.batch_size < 2 else \
            f"data.train_limit={cfg.data.train_limit} ({size} training sample)"
        raise ActError(f"{key}: model {cfg.model.name} has batch norm, which cannot train on batches of one "
                       f"sample; use at least 2")


def check_finite(run: Run, record: dict, saved: int | None) -> None:
    """Stop a run whose loss turned NaN or infinite (read from the epoch's statistics, no extra sync)."""
    bad = {k: record[k] for k in ("rtm_loss", "ntm_loss") if record[k] is not None and not math.isfinite(record[k])}
    if bad:
        losses = ", ".join(f"{k}={v}" for k, v in bad.items())
        last = "no epoch was checkpointed" if saved is None else \
            f"the last good epoch, {saved}, is checkpointed in {run.dir / CHECKPOINT}"
        raise ActError(f"training diverged in epoch {record['epoch']} ({losses}; optim.lr={run.cfg.optim.lr}, "
                       f"optim.lr1={run.cfg.optim.lr1}): stopped without checkpointing it; {last}")


def saved_text(run: Run, saved: int | None) -> str:
    """What an interrupted run has on disk, and how to continue it."""
    if saved is None:
        return f"no epoch is checkpointed yet: `act train --resume {run.dir}` starts the run again from epoch 0"
    return f"epoch {saved} is checkpointed in {run.dir / CHECKPOINT}: continue with `act train --resume {run.dir}`"


def save_checkpoint(run: Run, epoch: int) -> None:
    ctx = run.ctx
    checkpoint.save(run.dir / CHECKPOINT, {
        "epoch": epoch,  # last completed epoch; the next starts at its first batch
        "fingerprint": run.fingerprint,
        "world_size": run.world.size,
        "rtm": distributed.unwrap(ctx.rtm).state_dict(), "ntm": distributed.unwrap(ctx.ntm).state_dict(),
        "opt0": ctx.opt0.state_dict(), "opt1": ctx.opt1.state_dict(),
        "scaler": ctx.scaler.state_dict() if ctx.scaler is not None else None,
        "bank": ctx.bank.state_dict(),
        "history": run.history,
        "rng": checkpoint.rng_state(),
    })


def restore(run: Run, state: dict) -> None:
    """Put a verified checkpoint's state into the run; a state that does not fit is one line."""
    path, ctx = run.dir / CHECKPOINT, run.ctx
    if state.get("fingerprint") != run.fingerprint:
        raise ActError(f"the data of run {run.dir} changed since {path} was written (data set size, labels, "
                       f"pixels or file list differ); resume with the data the run began with")
    distributed.check_world(run.world, state, path)
    try:
        distributed.unwrap(ctx.rtm).load_state_dict(state["rtm"])
        distributed.unwrap(ctx.ntm).load_state_dict(state["ntm"])
        ctx.opt0.load_state_dict(state["opt0"])
        ctx.opt1.load_state_dict(state["opt1"])
        if ctx.scaler is not None and state["scaler"] is not None:
            ctx.scaler.load_state_dict(state["scaler"])
        ctx.bank.load_state_dict(state["bank"])
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ActError(f"checkpoint {path} does not fit model.name={run.cfg.model.name} of this run ({first}); "
                       f"was it copied from another run?") from exc
    checkpoint.set_rng_state(state["rng"])
    run.history = list(state["history"])
    run.start_epoch = state["epoch"] + 1


def finite(value):
    """`value` with every NaN or infinity replaced by None (null in JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def to_json(value, **kwargs) -> str:
    return json.dumps(finite(value), allow_nan=False, **kwargs)


def write_metrics(run: Run) -> None:
    write_text(run.dir / "metrics.jsonl", "".join(to_json(r) + "\n" for r in run.history))


def summarise(run: Run) -> dict:
    h = run.history
    last = h[-1] if h else {}
    seconds = [r["epoch_seconds"] for r in h]
    return {
        "data": run.cfg.data.name, "method": run.cfg.method.name, "model": run.cfg.model.name,
        "noise": run.noise,
        "rtm": last_k_summary([r["rtm_test_acc"] for r in h]),
        "ntm": last_k_summary([r["ntm_test_acc"] for r in h]),
        "selection": {"precision": last.get("sel_precision"), "recall": last.get("sel_recall"),
                      "f1": last.get("sel_f1")},
        "epochs": len(h),
        "epoch_seconds_median": float(np.median(seconds)) if seconds else None,
        "device": str(run.device),
        "world_size": run.world.size, "bank_consistent": distributed.bank_consistent(run.world, run.ctx.bank),
        "pipeline": run.pipeline.name, "views": run.pipeline.views,
    }


def noise_settings(cfg: Config) -> dict:
    """The noise keys of the config, kept beside the actual rate in noise.json and summary.json."""
    n = cfg.data.noise
    return {"type": n.type, "closeset_ratio": n.closeset_ratio, "openset_ratio": n.openset_ratio, "seed": n.seed}


def train(cfg: Config, out=sys.stdout) -> dict:
    """A new run from `cfg`; its folder is locked (rundir.new_run_dir) until the run ends."""
    run = prepare(cfg)
    try:
        run.fingerprint = checkpoint.fingerprint(run.pipeline.source)
        check_trainable(run)
        summary = loop(run, out)
    finally:
        release(run.dir)
    distributed.leave(run.world)
    return summary


def resume(run_dir: str | Path, overrides: list[str] | None = None, out=sys.stdout) -> dict:
    """Continue the run in `run_dir` from its last completed epoch (from epoch 0 when it stopped
    before its first checkpoint), after checking the checkpoint and that the data is the same."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ActError(f"{run_dir} is not a run folder (no config.yaml); give the folder a run was written to")
    for item in overrides or []:
        key = item.partition("=")[0].strip()
        if key not in RESUME_OVERRIDABLE:
            raise ActError(f"{key} cannot change when resuming (it would change the experiment); "
                           f"allowed: {', '.join(RESUME_OVERRIDABLE)}")
    world = distributed.join(load_config(run_dir / "config.yaml", overrides).run)
    if world.main:  # rank 0 alone writes the folder
        acquire(run_dir)
    try:
        summary = resume_locked(run_dir, overrides, out)
    finally:
        release(run_dir)
    distributed.leave(world)
    return summary


def resume_locked(run_dir: Path, overrides: list[str] | None, out) -> dict:
    cfg = load_config(run_dir / "config.yaml", overrides)
    state = checkpoint.load(run_dir / CHECKPOINT) if (run_dir / CHECKPOINT).exists() else None
    done = state["epoch"] + 1 if state else 0
    if cfg.optim.epochs < done:
        raise ActError(f"optim.epochs={cfg.optim.epochs} is below the {done} epochs run {run_dir} has completed; "
                       f"give optim.epochs >= {done}")
    run = prepare(cfg, run_dir)
    out = distributed.console(run.world, out)
    run.noise.update(noise_settings(cfg))
    check_labels(run)
    run.fingerprint = checkpoint.fingerprint(run.pipeline.source)
    check_trainable(run)
    if state is not None:
        restore(run, state)
    if overrides and run.world.main:
        write_text(run_dir / "config.yaml", dump_yaml(cfg))
    print(f"resuming {run_dir} at epoch {run.start_epoch}", file=out)
    return loop(run, out)


def check_labels(run: Run) -> None:
    """The labels read now against the run's labels.npz; a start killed before writing it gets it now."""
    path, source = run.dir / "labels.npz", run.pipeline.source
    if not path.exists():
        if run.world.main:
            atomic_write(path, lambda p: save_labels(p, source.noisy, source.train.labels))
            write_text(run.dir / "noise.json", json.dumps(run.noise, indent=2))
        return
    try:
        with np.load(path) as saved:
            noisy, true = saved["noisy"], saved["true"]
    except (OSError, ValueError, KeyError) as exc:
        raise ActError(f"{path} cannot be read ({type(exc).__name__}); the run's labels cannot be checked") from exc
    if len(true) != len(source.train.labels):
        raise ActError(f"the data of run {run.dir} changed: {path} holds {len(true)} training labels, the data "
                       f"read now has {len(source.train.labels)}; resume with the data the run began with")
    if not (np.array_equal(true, source.train.labels) and np.array_equal(noisy, source.noisy)):
        raise ActError(f"the data of run {run.dir} changed: its labels differ from {path}; "
                       f"resume with the data the run began with")


def loop(run: Run, out=sys.stdout) -> dict:
    cfg, main = run.cfg, run.world.main  # under torchrun rank 0 alone prints and writes
    out = distributed.console(run.world, out)
    progress = use_progress(cfg.run.progress) and main
    print(f"{cfg.method.name} | data {cfg.data.name} ({len(run.pipeline.source.train)} train) | model {cfg.model.name} "
          f"| pipeline {run.pipeline.name} | device {run.device} | run {run.dir}", file=out)
    print(format_header(), file=out)
    for record in run.history:
        print(format_row(record), file=out)
    saved = run.start_epoch - 1 if run.start_epoch else None
    outputs = Outputs(run.dir, cfg)
    try:
        for epoch in range(run.start_epoch, cfg.optim.epochs):
            record = train_epoch(run, epoch, progress)
            check_finite(run, record, saved)
            run.history.append(record)
            if main:
                save_checkpoint(run, epoch)
                write_metrics(run)
            saved = epoch
            outputs.epoch(record)
            print(format_row(record), file=out, flush=True)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(saved_text(run, saved)) from None
    except Exception as exc:
        if not distributed.lost_peer(run.world, exc):
            raise
        raise ActError(distributed.lost_text(run.world, exc, epoch, cfg.run.dist_timeout, saved_text(run, saved))) from exc
    summary = summarise(run)
    if main:
        write_text(run.dir / "summary.json", to_json(summary, indent=2))
    outputs.finish(run.ctx.bank, run.history, run.pipeline.source.train.files)
    print_summary(run, summary, out)
    return summary
