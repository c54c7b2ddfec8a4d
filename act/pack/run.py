"""K runs trained as one pack (`act train --pack FILE`), each still its own run.

A pack file lists the runs (`act sweep --pack` writes one per pack; docs/sweeps.md, *A pack by hand*):

    runs:
      - config: base.yaml                 # optional (absent: the embedded demo); relative to the pack file
        overrides: [run.seed=0, run.out_dir=/out/runs, run.name=cell-a]
      - ...

A run's config is `load_config(config, overrides)`, as `act train --config CONFIG OVERRIDES`
builds it, and its folder is run.out_dir/run.name (run.name is required). A run whose folder
holds a config.yaml is resumed as `act train --resume` resumes it, the others start; one whose
folder reads back finished is left as it is (a run's records are written once), and a summary
names the pack (`packed`: k, members, epochs) only where its run trained epochs in it. Every run
must be able to share the step of the first (act/pack/compat.py), checked before any folder is
made.

Each run is built exactly as it is alone (act/run/build.py `prepare`, act/run/loop.py `reopen`):
its data, noise, pipeline, nets from its seed, optimisers and bank. Their contexts are then packed
(act/pack/step.py) and each epoch trains the K runs in one step per batch, the K pipelines'
batches side by side (tensor pipelines build the K runs' views in one pass per chunk); each
run's statistics make its own epoch record, and after every epoch each run's state is unpacked
into its own context and written by the writers a run alone uses, so a packed run's folder is
an ordinary run folder (`act report`, `act issues`, `act train --resume` read it as any). A run
whose loss turns NaN or infinite stops alone (diverged.json, its lock released) while its slice
of the packed nets goes on, ignored. A pack killed between two runs' checkpoints is resumed by
training the runs behind alone up to the others' epoch first.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from act.config import Config, load_config, override, read_yaml
from act.errors import ActError
from act.method import registry as methods
from act.pack.compat import OWN, first_difference, pack_key, why_alone
from act.pack.models import stack_images
from act.pack.step import PackStats, pack_contexts, packed_losses, stack_batches, unpack_run
from act.run import checkpoint, runtime
from act.run.build import Run, prepare
from act.run.console import format_header, format_row, print_summary
from act.run.folder import CONFIG, RunFolder, release, taken
from act.run.loop import (admit, begin_epoch, diverged, finish, keep_epoch, note_start, phase_of, reads_strong,
                          record_epoch, reopen, resume_overrides, tell_fallbacks, train_batches, train_epoch, trainable,
                          with_progress)
from act.run.outputs import Outputs
from act.run.state import read_back, read_run
from act.run.preflight import check_weights
from act.run.records import epoch_record
from act.step import distributed, engine
from pipelines.tensor import TensorPipeline, pack_views



@dataclass
class Entry:
    """A run as the pack file gives it, before anything is built."""

    cfg: Config
    dir: Path
    resume: list[str] | None  # the overrides of its folder's config.yaml that resume it; None: a new run
    finished: bool = False  # its folder reads back finished: the pack leaves it as it is

    @property
    def name(self) -> str:
        return self.cfg.run.name


@dataclass
class Member:
    """A run of the pack as it trains: its own Run (its context holds its state as of its last
    checkpoint), its outputs, its last checkpointed epoch, and the line that stopped it, if any."""

    run: Run
    outputs: Outputs
    saved: int | None
    stopped: str | None = None

    @property
    def name(self) -> str:
        return self.run.cfg.run.name


def read_pack(path: str | Path) -> list[Entry]:
    """The runs of a pack file, each config built and checked, every refusal one line; nothing is
    created or locked."""
    path = Path(path)
    entries = [entry(path, i, item) for i, item in enumerate(pack_items(path))]
    folders: dict[Path, str] = {}
    for e in entries:
        if e.dir.resolve() in folders:
            raise ActError(f"pack file {path}: runs {folders[e.dir.resolve()]} and {e.name} share the folder "
                           f"{e.dir}; give each its own run.name")
        folders[e.dir.resolve()] = e.name
        why = why_alone(e.cfg, machine=True)
        if why is not None:
            raise ActError(f"pack file {path}: run {e.name} cannot be packed: {why}")
    first = entries[0]
    for e in entries[1:]:
        if pack_key(e.cfg) != pack_key(first.cfg):
            raise ActError(f"pack file {path}: runs {first.name} and {e.name} cannot share a step "
                           f"({first_difference(first.cfg, e.cfg)}); runs of a pack differ only in {', '.join(OWN)}")
    return entries


def pack_items(path: Path) -> list[dict]:
    """The pack file's `runs:` list, each item checked for its keys and their types."""
    layout = f"pack file {path} must hold `runs:`, a list of runs, each with `overrides:` (a list of key=value) " \
             f"and optionally `config:` (a config file)"
    try:
        data = read_yaml(path)
    except ActError as exc:
        if "must hold a mapping" in str(exc):
            raise ActError(layout) from None
        raise ActError(str(exc).replace(f"config file {path}", f"pack file {path}")) from None
    items = data.get("runs")
    if set(data) != {"runs"} or not isinstance(items, list) or not items:
        raise ActError(layout)
    for i, item in enumerate(items):
        overrides = item.get("overrides", []) if isinstance(item, dict) else None
        if not (isinstance(item, dict) and set(item) <= {"config", "overrides"} and isinstance(overrides, list)
                and all(isinstance(o, str) for o in overrides) and isinstance(item.get("config", ""), str)):
            raise ActError(f"{layout}; run {i + 1} is not")
    return items


def entry(path: Path, i: int, item: dict) -> Entry:
    """Run i of the pack file: its config, its folder, and whether it is resumed."""
    where = f"pack file {path}, run {i + 1}"
    config = item.get("config")
    try:
        cfg = load_config(None if config is None else path.parent / config, item.get("overrides", []))
    except ActError as exc:
        raise ActError(f"{where}: {exc}") from None
    if cfg.run.name is None:
        raise ActError(f"{where} has no run.name: a packed run's folder is run.out_dir/run.name; give run.name=NAME")
    folder = Path(cfg.run.out_dir) / cfg.run.name
    if not (folder / CONFIG).is_file():
        return Entry(cfg, folder, None)
    done = read_run(folder)
    finished = done.finished and len(done.history) >= cfg.optim.epochs  # not a run the pack trains further
    return Entry(cfg, folder, resume_overrides(cfg, folder, where), finished)


def train_pack(path: str | Path, out=None) -> list[dict]:
    """Train the runs of pack file `path` as one pack (new ones started, the others resumed);
    each run's folder is locked while the pack writes it. Returns the runs' summaries; a run that
    diverged is one ActError line at the end, after the others finished."""
    out = sys.stdout if out is None else out  # the stdout of the call, not of the import
    entries = read_pack(path)
    if distributed.world_from_env().size > 1:
        raise ActError("packed runs train in one process: start act train --pack without torchrun")
    for e in (e for e in entries if e.finished):  # its records are written once: not finished again
        print(f"{e.name}: finished already; the pack leaves its folder {e.dir} as it is", file=out)
    entries = [e for e in entries if not e.finished]
    if not entries:
        return []
    with contextlib.ExitStack() as stack:
        for e in entries:  # a folder in use refuses the pack before any new folder is made
            if e.resume is not None:
                stack.enter_context(RunFolder(e.dir).held())
        members = [build(e, stack, out) for e in entries]
        try:
            summaries = train_members(members, out)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as act/commands/cli.py raises it
            raise type(exc)(saved_text(path, members)) from None
    stopped = [f"{m.name} ({m.stopped})" for m in members if m.stopped is not None]
    if stopped:
        how = f"all {len(members)} packed runs stopped" if len(stopped) == len(members) else \
            f"{len(stopped)} of the {len(members)} packed runs stopped, the others finished"
        raise ActError(f"{how}: " + "; ".join(stopped))
    for m in members:
        read_back(m.run.dir)
    return summaries


def build(e: Entry, stack: contextlib.ExitStack, out) -> Member:
    """A run of the pack built as it is alone: a new one (its folder made and held) or a resumed one
    (its folder held already) restored from its checkpoint."""
    if e.resume is None:
        check_weights(e.cfg)
        run = prepare(e.cfg, runtime.decide(e.cfg))  # makes and locks the folder, as `act train` does
        stack.enter_context(run.folder.held(taken))
        admit(run)
        note_start(run, "start", out)
    else:
        folder = RunFolder(e.dir)
        run = reopen(runtime.decide(override(folder.config(), e.resume)), folder, e.resume, out)
    run.rng = checkpoint.rng_state()  # its own, before the next run's build draws
    outputs = Outputs(run.dir, run.cfg, run.runtime.plots, run.history)
    return Member(run, outputs, run.start_epoch - 1 if run.start_epoch else None)


def train_members(members: list[Member], out) -> list[dict]:
    """Bring the runs behind up to the furthest one alone, then train the rest packed; finish each."""
    first, width = members[0].run, max(len(m.name) for m in members)
    print(f"pack of {len(members)} runs | {first.cfg.method.name} | data {first.cfg.data.name} "
          f"({len(first.pipeline.source.train)} train) | model {first.cfg.model.name} | pipeline "
          f"{first.pipeline.name} | device {first.device}", file=out)
    for m in members:
        print(f"  {m.name}: {m.run.dir}", file=out)
    print(f"{'run'.ljust(width)}  {format_header()}", file=out)
    for m in members:
        for record in m.run.history:
            print(row(m, record, width), file=out)
    start = max(m.run.start_epoch for m in members)
    for m in members:
        for epoch in range(m.run.start_epoch, start):
            if m.stopped is None:
                end_epoch(m, train_epoch(m.run, epoch, progress=False), out, width)
    live = [m for m in members if m.stopped is None]
    end = first.cfg.optim.epochs
    packed = {}  # a summary names the pack only where the run trained epochs in it
    if live and start < end:
        train_packed(live, start, out, width)
        packed = {"packed": {"k": len(live), "members": [m.name for m in live], "epochs": [start, end - 1]}}
    summaries = []
    for m in (m for m in members if m.stopped is None):
        summaries.append(finish(m.run, m.outputs, **packed))
        print_summary(m.run, summaries[-1], out)
    return summaries


def train_packed(members: list[Member], start: int, out, width: int) -> None:
    """The epochs from `start` on of the members packed: after each, every member still training
    gets its state back from the pack and ends its epoch as a run alone does."""
    pack = pack_of(members, start)
    told: set[str] = set()
    for epoch in range(start, pack.cfg.optim.epochs):
        if all(m.stopped is not None for m in members):
            return
        records = train_pack_epoch(pack, members, epoch, pack.runtime.progress)
        for k, m in enumerate(members):
            if m.stopped is None:
                unpack_run(pack.ctx, k, m.run.ctx)
                end_epoch(m, records[k], out, width)
        tell_fallbacks(pack, told, out)


def pack_of(members: list[Member], epoch: int) -> Run:
    """The pack as a Run: the first member's settings and pipeline (the epoch's length, the view
    passes), the members' contexts packed, one packed step per phase built as a run's steps are
    (compile and CUDA graphs as its Runtime decided), one statistics row per member."""
    runs = [m.run for m in members]
    first, rt = runs[0], runs[0].runtime
    if any(run.fingerprint["data"] != first.fingerprint["data"] for run in runs):
        raise ActError(f"the runs of a pack read different data ({first.dir} and another); they share one test set")
    for run in runs:  # on the device, as a resumed run's are once set: pack_contexts compares them
        engine.set_lrs(run.ctx, first.rtm_plan[epoch], first.ntm_plan[epoch])
    ctx = pack_contexts([run.ctx for run in runs])
    steps = engine.build_steps(ctx, packed_losses(methods.spec_of(first.cfg.method.name).losses),
                               distributed.rank_batch(first.cfg, first.world), rt.compile, rt.compile_mode,
                               rt.cuda_graph, static_inputs=rt.cuda_paths, strict=rt.cuda_graph_strict,
                               compile_strict=rt.compile_strict)
    for run in runs:
        run.steps = steps  # their summaries say how the pack's steps ran
    return dataclasses.replace(first, ctx=ctx, steps=steps, stats=PackStats(first.device, len(runs)))


def train_pack_epoch(pack: Run, members: list[Member], epoch: int, progress: bool) -> list[dict]:
    """One epoch of every member through the packed step, and the test pass; each member's record."""
    phase = phase_of(pack.cfg, epoch)
    step = begin_epoch(pack, epoch)
    start = time.perf_counter()
    for batch in with_progress(pack, pack_batches(members, epoch), epoch, progress):
        step(stack_batches(list(batch)), pack.stats)
    totals = pack.stats.read()
    train_seconds = time.perf_counter() - start
    accs = evaluate([pack.ctx.rtm, pack.ctx.ntm], pack.pipeline.test_batches(), len(members), pack.ctx.amp_dtype)
    seconds = time.perf_counter() - start
    return [epoch_record(m.run, epoch, phase, totals[k], accs[k], seconds, train_seconds)
            for k, m in enumerate(members)]


def pack_batches(members: list[Member], epoch: int):
    """The members' batches of `epoch`, step by step, each the batch its run sees alone
    (act/run/loop.py `train_batches`): tensor pipelines make them together, one apply pass of the
    views per chunk of the pack (pipelines/tensor.py `PackViews`); other pipelines side by side."""
    pipelines = [m.run.pipeline for m in members]
    if not all(isinstance(p, TensorPipeline) for p in pipelines):
        return zip(*(train_batches(m.run, epoch) for m in members), strict=True)
    first = members[0].run
    batches = pack_views(pipelines).train_batches(epoch, strong=reads_strong(first.cfg, epoch))
    return trainable(first, batches, lambda batch: len(batch[0].index))  # as train_batches leaves a batch of one out


@torch.no_grad()
def evaluate(twins: list[torch.nn.Module], batches, runs: int, amp_dtype: torch.dtype | None) -> list[list[float]]:
    """Each run's test accuracy (%) by each packed net, [[rtm, ntm] of run 0, ...]: every test
    batch goes to all runs' slices at once (the runs share the test set, act/pack/compat.py)."""
    for net in twins:
        net.eval()
    correct, total = None, 0
    for images, labels in batches:
        x = stack_images([images] * runs)
        with torch.autocast(x.device.type, amp_dtype) if amp_dtype else contextlib.nullcontext():
            hits = torch.stack([(net(x).argmax(2) == labels[:, None]).sum(0) for net in twins], dim=1)
        correct, total = hits if correct is None else correct + hits, total + len(labels)
    for net in twins:
        net.train()
    if total == 0:
        return [[float("nan")] * len(twins) for _ in range(runs)]
    return [[100.0 * c / total for c in run] for run in correct.tolist()]


def end_epoch(member: Member, record: dict, out, width: int) -> None:
    """A member's epoch ended as the loop ends a run's: a loss not finite stops it (diverged.json,
    its folder released); else the record kept, the checkpoint, metrics.jsonl and its row."""
    run = member.run
    member.stopped = diverged(run, record, member.saved)
    if member.stopped is not None:
        release(run.dir)  # the pack writes it no more: report and sweep read it as diverged now
        print(f"{member.name}: {member.stopped}", file=out, flush=True)
        return
    keep_epoch(run, record)
    member.saved = record["epoch"]
    record_epoch(run, record, member.outputs)
    print(row(member, record, width), file=out, flush=True)


def row(member: Member, record: dict, width: int) -> str:
    return f"{member.name.ljust(width)}  {format_row(record)}"


def saved_text(path: str | Path, members: list[Member]) -> str:
    """What an interrupted pack has on disk, and how to continue it."""
    saved = {m.saved for m in members if m.stopped is None}
    if saved == {None}:
        return f"no epoch is checkpointed yet: `act train --pack {path}` starts the runs again from epoch 0"
    if len(saved) == 1:
        return f"epoch {saved.pop()} is checkpointed in each run's folder: continue with `act train --pack {path}`"
    each = ", ".join(f"{m.name} {'-' if m.saved is None else m.saved}" for m in members if m.stopped is None)
    return f"the epochs checkpointed: {each}; continue with `act train --pack {path}` (the runs behind catch up first)"
