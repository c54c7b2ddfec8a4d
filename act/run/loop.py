"""One run: the epoch loop, new and resumed.

`train` starts a run from a config, `resume` continues one from its folder; both build the run
with act/run/build.py's `prepare` and hand it to `loop`, which trains epoch after epoch, checkpoints
each (act/run/checkpoint.py), writes its metrics and summary (act/run/records.py) and prints the table
(act/run/console.py).

The run folder (one per run, never overwritten by accident) and its files: act/run/folder.py's
`RunFolder`, locked for the run's life (`RunFolder.held`).
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Callable

from act.config import (DATA_PLACES, RESUME_OVERRIDABLE, Config, flatten, override, override_text,
                        to_dict)
from act.errors import ActError
from act.method import registry as methods
from act.run import checkpoint, provenance, runtime
from act.run.build import Run, check_trainable, has_batch_norm, prepare
from act.run.console import format_header, format_row, print_summary
from act.run.folder import CHECKPOINT, CONFIG, LABELS, RunFolder, taken
from act.run.outputs import Outputs
from act.run.preflight import check_weights
from act.run.records import epoch_record, graph_modes, summarise
from act.run.runtime import Runtime
from act.run.state import read_back
from act.step import distributed, engine


def phase_of(cfg: Config, epoch: int) -> str:
    return methods.spec_of(cfg.method.name).phase(epoch, cfg.optim.warmup_epochs)


def train_epoch(run: Run, epoch: int, progress: bool) -> dict:
    """One epoch of training and the test pass; returns the epoch's metrics record."""
    ctx, phase = run.ctx, phase_of(run.cfg, epoch)
    step = begin_epoch(run, epoch)
    stats = run.stats
    start = time.perf_counter()
    for batch in with_progress(run, train_batches(run, epoch), epoch, progress):
        step(batch, stats)
    distributed.finish_epoch(run.world, ctx, stats, run.pipeline, epoch)
    totals = stats.read()
    train_seconds = time.perf_counter() - start
    accs = distributed.evaluate(run.world, [ctx.rtm, ctx.ntm], run.pipeline.test_batches(), ctx.amp_dtype)
    return epoch_record(run, epoch, phase, totals, accs, time.perf_counter() - start, train_seconds)


def begin_epoch(run: Run, epoch: int) -> engine.PhaseStep:
    """Ready the run's step context for `epoch` (its learning rates, the epoch; the other phases'
    graphs released) and zero its statistics; returns the step of the epoch's phase. `run` may be a
    pack's (act/pack/run.py: the pack's context, steps and statistics)."""
    phase = phase_of(run.cfg, epoch)
    engine.set_lrs(run.ctx, run.rtm_plan[epoch], run.ntm_plan[epoch])
    run.ctx.set_epoch(epoch)
    for name, other in run.steps.items():
        if name != phase:
            other.release()  # a finished phase's graph holds memory the next one may need
    run.stats.reset()
    return run.steps[phase]


def with_progress(run: Run, batches, epoch: int, progress: bool):
    """`batches`, behind a progress bar of the epoch when `progress`."""
    if not progress:
        return batches
    from tqdm import tqdm

    return tqdm(batches, total=run.pipeline.steps_per_epoch(), leave=False, dynamic_ncols=True,
                desc=f"epoch {epoch} {phase_of(run.cfg, epoch)}")


def train_batches(run: Run, epoch: int):
    """The pipeline's batches of `epoch`, less a batch of one sample when the model has batch
    norm: one sample has no batch statistics (BatchNorm1d refuses it in training mode), so
    that sample sits the epoch out and `samples_seen` counts it out. The public code's loader
    keeps the last partial batch too, and would fail there; runs without such a batch are
    unchanged, and a resumed run skips the same sample (the order is a function of the seed
    and the epoch)."""
    batches = run.pipeline.train_batches(epoch, strong=reads_strong(run.cfg, epoch))
    if run.world.size > 1:
        return distributed.padded(batches, run.pipeline)  # pipelines/shard.py already keeps batches of one out
    return trainable(run, batches, lambda batch: len(batch.index))


def reads_strong(cfg: Config, epoch: int) -> bool:
    """Whether the loss of `epoch`'s phase reads the strong view (an epoch that does not builds none)."""
    return methods.spec_of(cfg.method.name).reads_strong(cfg.method, phase_of(cfg, epoch))


def trainable(run: Run, batches, samples: Callable[[object], int]):
    """`batches` less those of one sample (`samples(batch)`) when the model has batch norm
    (`train_batches`); a pack's steps, lists of its runs' batches, are counted by their first."""
    if not has_batch_norm(run.ctx.rtm):
        return batches
    return (batch for batch in batches if samples(batch) > 1)


def check_finite(run: Run, record: dict, saved: int | None) -> None:
    """Stop a run whose loss turned NaN or infinite (read from the epoch's statistics, no extra sync)."""
    line = diverged(run, record, saved)
    if line is not None:
        raise ActError(line)


def diverged(run: Run, record: dict, saved: int | None) -> str | None:
    """The line that stops a run whose loss in `record` is NaN or infinite, its folder marked so
    (diverged.json); None while the losses are finite."""
    bad = {k: record[k] for k in ("rtm_loss", "ntm_loss") if record[k] is not None and not math.isfinite(record[k])}
    if not bad:
        return None
    losses = ", ".join(f"{k}={v}" for k, v in bad.items())
    last = "no epoch was checkpointed" if saved is None else \
        f"the last good epoch, {saved}, is checkpointed in {run.folder / CHECKPOINT}"
    why = f"training diverged in epoch {record['epoch']} ({losses}; optim.lr={run.cfg.optim.lr}, " \
          f"optim.lr1={run.cfg.optim.lr1})"
    if run.world.main:  # the folder says so: act report and act sweep read it
        run.folder.write_diverged(record["epoch"], why)
    return f"{why}: stopped without checkpointing it; {last}"


def keep_epoch(run: Run, record: dict) -> None:
    """A finite epoch's record into the run's history and its state into the checkpoint (rank 0);
    no rank goes on before rank 0 has it on disk."""
    run.history.append(record)
    if run.world.main:
        checkpoint.save_run(run, record["epoch"])
    distributed.barrier(run.world)


def record_epoch(run: Run, record: dict, outputs: Outputs) -> None:
    """After its checkpoint: the epoch's line in metrics.jsonl, and its scalars (TensorBoard, W&B)."""
    if run.world.main:
        run.folder.write_metrics(run.history)
    outputs.epoch(record)


def finish(run: Run, outputs: Outputs, **extra) -> dict:
    """After the last epoch: the summary (with `extra` entries) written, bank.npz, the curves and the
    final figures of TensorBoard and W&B."""
    summary = {**summarise(run, distributed.bank_consistent(run.world, run.ctx.bank)), **extra}  # a collective
    if run.world.main:
        run.folder.write_summary(summary)
    outputs.finish(run.ctx.bank, run.history, run.pipeline.source.train.files, run.pipeline.source.num_classes,
                   summary)
    return summary


def saved_text(run: Run, saved: int | None) -> str:
    """What an interrupted run has on disk, and how to continue it."""
    resume_command = distributed.resume_command(run.world, run.dir)
    if saved is None:
        return f"no epoch is checkpointed yet: {resume_command} starts the run again from epoch 0"
    return f"epoch {saved} is checkpointed in {run.folder / CHECKPOINT}: continue with {resume_command}"


def admit(run: Run) -> None:
    """Before a new or resumed run trains: its data's fingerprint (kept in each checkpoint and
    compared on resume) and the refusal of a run that could not train a single batch."""
    run.fingerprint = checkpoint.fingerprint(run.pipeline.source, run.pipeline.noisy)
    check_trainable(run)


def note_start(run: Run, kind: str, out) -> None:
    """The run's provenance entry for this start or resume (act/run/provenance.py), written by rank 0
    before the run trains; an unreadable provenance.json is replaced, with one line saying so."""
    if run.world.main:
        why = run.folder.add_provenance(provenance.entry(kind, run.device))
        if why:
            print(f"{why}; it now holds this {kind}'s entry alone", file=out)


def train(cfg: Config, out=None) -> dict:
    """A new run from `cfg`; its folder is locked (RunFolder.create) until the run ends."""
    out = sys.stdout if out is None else out  # the stdout of the call, not of the import
    check_weights(cfg)
    rt = runtime.decide(cfg)
    world = rt.world
    distributed.join(world, rt.device, cfg.run.dist_timeout)
    with distributed.explain_lost(world, cfg.run.dist_timeout,
                                  lambda: ("before training", "no epoch is checkpointed: start the run again")):
        run = prepare(cfg, rt)
    with run.folder.held(taken):  # rank 0 holds it from `prepare` on (RunFolder.create)
        with distributed.explain_lost(world, cfg.run.dist_timeout, lambda: ("before training", saved_text(run, None))):
            admit(run)
            note_start(run, "start", out)
        summary = loop(run, out)
    distributed.leave(run.world)
    if run.world.main:
        read_back(run.dir)
    return summary


FOLDER_KEYS = ("run.out_dir", "run.name")  # where a run's folder is, not what it trains


def resume_overrides(cfg: Config, folder: Path, where: str, keys: tuple[str, ...] | None = None) -> list[str]:
    """The overrides that resume the run in `folder` as `cfg` configures it (a pack file's run,
    a sweep's cell): the keys a resume may change that differ from its config.yaml (and the data's
    places, which the data fingerprint checks), or only those of `keys`; any other key that
    differs is refused, naming `where`, as `act train --resume` refuses it."""
    try:
        then = flatten(to_dict(RunFolder(folder).config()))
    except ActError as exc:
        raise ActError(f"{where}: {exc}") from None
    now = flatten(to_dict(cfg))
    changed = [key for key in now  # an unset place (None) keeps the recorded one
               if key not in FOLDER_KEYS and now[key] != then.get(key) and not (key in DATA_PLACES and now[key] is None)]
    if keys is not None:
        changed = [key for key in changed if key in keys]
    for key in changed:
        if key not in RESUME_OVERRIDABLE + DATA_PLACES:
            raise ActError(f"{where}: {key} is {now[key]!r} here but {then.get(key)!r} in {folder / CONFIG}; the run "
                           f"there is resumed, and a resume may change only {', '.join(RESUME_OVERRIDABLE)} "
                           f"and the data's place")
    return [f"{key}={override_text(now[key])}" for key in changed]


def resume(run_dir: str | Path, overrides: list[str] | None = None, out=None) -> dict:
    """Continue the run in `run_dir` from its last completed epoch (from epoch 0 when it stopped
    before its first checkpoint), after checking the checkpoint and that the data is the same."""
    out = sys.stdout if out is None else out
    folder = RunFolder.open(run_dir)
    for item in overrides or []:
        key = item.partition("=")[0].strip()
        if key not in RESUME_OVERRIDABLE + DATA_PLACES:  # moved data: the fingerprint checks they are the same
            raise ActError(f"{key} cannot change when resuming (it would change the experiment); "
                           f"allowed: {', '.join(RESUME_OVERRIDABLE + DATA_PLACES)}")
    cfg = override(folder.config(), overrides)
    rt = runtime.decide(cfg)  # once, before the processes join on it
    world = rt.world
    distributed.join(world, rt.device, cfg.run.dist_timeout)
    untouched = f"{folder.path} is as it was: continue with {distributed.resume_command(world, folder.path)}"
    with distributed.explain_lost(world, cfg.run.dist_timeout, lambda: ("before training", untouched)):
        with folder.held(lambda take: distributed.on_main(world, take)):  # rank 0 alone writes; its refusal reaches all
            summary = loop(reopen(rt, folder, overrides, out), out)
    distributed.leave(world)
    if world.main:
        read_back(folder.path)
    return summary


def reopen(rt: Runtime, folder: RunFolder, overrides: list[str] | None, out) -> Run:
    """The run of a folder this process holds, rebuilt on the Runtime `rt` and restored from its
    checkpoint, ready to train its next epoch (checked as `resume` promises: config record, epochs,
    labels, data)."""
    cfg, run_dir, path = override(folder.config(), overrides), folder.path, folder / CHECKPOINT
    state = folder.checkpoint()
    if state is not None:  # first: an edited config.yaml would otherwise read as changed labels or data
        checkpoint.check_experiment(state, cfg, path)
        distributed.check_world(rt.world, state, path)  # before prepare's advice on the batch size
    done = state["epoch"] + 1 if state else 0
    if cfg.optim.epochs < done:
        raise ActError(f"optim.epochs={cfg.optim.epochs} is below the {done} epochs run {run_dir} has completed; "
                       f"give optim.epochs >= {done}")
    run = prepare(cfg, rt, run_dir, weights=state is None)  # a checkpoint holds the weights: model.pretrained unread
    out = distributed.console(run.world, out)
    source, noisy = run.pipeline.source, run.pipeline.noisy
    if (folder / LABELS).exists():
        folder.check_labels(noisy, source.train.labels)
    elif run.world.main:  # a start killed before writing its labels gets them now
        folder.write_labels(noisy, source.train.labels, run.noise)
    admit(run)
    if state is not None:
        run.history, run.start_epoch = checkpoint.restore_run(run, state, path)
        if run.world.main:  # a record cut short (a crash mid-write) is the checkpoint's history again
            folder.repair_metrics(run.history)
    if overrides and run.world.main:
        folder.write_config(cfg)
    if run.world.main:
        folder.clear_diverged()
    note_start(run, "resume", out)
    print(f"resuming {run_dir} at epoch {run.start_epoch}", file=out)
    return run


def tell_fallbacks(run: Run, told: set[str], out) -> None:
    """One line for each step whose compile failed (run.compile=auto) and each step or view pass
    whose CUDA-graph capture failed (run.cuda_graph=auto), once."""
    for phase, mode in engine.compile_modes(run.steps).items():
        if mode.startswith("fell back: ") and f"compile.{phase}" not in told:
            told.add(f"compile.{phase}")
            print(f"the {phase} step runs without torch.compile: compiling it failed "
                  f"({mode.removeprefix('fell back: ')})", file=out)
    for name, mode in graph_modes(run).items():
        if mode.startswith("fell back: ") and name not in told:
            told.add(name)
            what = f"the {name} step" if name in run.steps else f"the {name} pass"
            print(f"{what} runs eagerly: its CUDA-graph capture failed ({mode.removeprefix('fell back: ')})",
                  file=out)


def loop(run: Run, out=None) -> dict:
    out = sys.stdout if out is None else out
    cfg = run.cfg
    out = distributed.console(run.world, out)
    progress = run.runtime.progress
    print(f"{cfg.method.name} | data {cfg.data.name} ({len(run.pipeline.source.train)} train) | model {cfg.model.name} "
          f"| pipeline {run.pipeline.name} | device {run.device} | run {run.dir}", file=out)
    print(format_header(), file=out)
    for record in run.history:
        print(format_row(record), file=out)
    saved = run.start_epoch - 1 if run.start_epoch else None
    where = "before training"
    outputs = Outputs(run.dir, cfg, run.runtime.plots, run.history)
    told: set[str] = set()

    def stage() -> tuple[str, str]:  # read when a process is lost: where the loop is then
        return where, saved_text(run, saved)

    try:
        with distributed.explain_lost(run.world, cfg.run.dist_timeout, stage):
            for epoch in range(run.start_epoch, cfg.optim.epochs):
                where = f"in epoch {epoch}"
                record = train_epoch(run, epoch, progress)
                check_finite(run, record, saved)
                keep_epoch(run, record)
                saved = epoch  # before the metrics are written: a stop from here on names this epoch, as it is on disk
                record_epoch(run, record, outputs)
                tell_fallbacks(run, told, out)
                print(format_row(record), file=out, flush=True)
            where = "after its last epoch"
            summary = finish(run, outputs)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as act/commands/cli.py raises it
        raise type(exc)(saved_text(run, saved)) from None
    print_summary(run, summary, out)
    return summary
