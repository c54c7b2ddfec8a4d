"""`act sweep`: a paper table in one command (docs/sweeps.md).

Every cell of the sweep file is validated before anything starts; the sweep folder is tied to
its sweep (act/sweep/spec.py); then each cell that is not finished is started or continued as an
ordinary run folder under DIR/runs (act/sweep/executors.py), a finished or diverged one left as it
is and one another process holds waited for. One line per run that ends, a progress line with an
ETA on a terminal (elsewhere, a heartbeat line a minute: runs running and finished, epochs, ETA),
and at the end the report of the sweep in DIR/report.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from collections import deque
from datetime import datetime
from pathlib import Path

from act.config import Config
from act.errors import ActError, Terminated
from act.run.files import write_text
from act.run.preflight import preflight, show_cells, verdict
from act.sweep.executors import PACKS, SUBMITIT, Job, LocalProcesses, SubmititJobs, make_submitit, submitit_here, visible_gpus
from act.sweep.slurm import Jobs
from act.sweep.spec import (MAX_CELLS, RECORD, RUNS, Sweep, adopt_names, check_cells, open_folder, read_record,
                            read_sweep)
from act.sweep.state import CellState, counts, read_state, status_table

EXECUTORS = ("local", "slurm", "submitit-local")
REPORT = "report"  # DIR/report: the report of the sweep
PLAN = "plan.json"  # DIR/packs/plan.json: each cell's pack, or why it runs alone (--pack)
DRAW_SECONDS = 2.0  # how often the progress line reads the runs' folders
VALIDATING_FROM = 200  # a sweep of this many cells says how its validation goes
HEARTBEAT_SECONDS = 60.0  # how often a sweep whose output is no terminal (a log, SLURM's output) says where it is
EXAMPLES = """examples:
  act sweep configs/sweeps/cifar-table1.yaml --out sweeps/table1 data.root=/data/cifar-100-python
  act sweep configs/sweeps/cifar-table1.yaml --out sweeps/table1 data.root=/data/cifar-100-python --per-gpu 2
  act sweep configs/sweeps/cifar-table1.yaml --out sweeps/table1 data.root=/data/cifar-100-python \\
      --executor slurm --slurm-partition gpu --slurm-time 240 --slurm-arg account=myproject
  act sweep configs/sweeps/demo.yaml --out sweeps/demo --grid optim.lr=0.01,0.02 --jobs 2
  act sweep --status sweeps/table1
"""


def add_parser(sub) -> None:
    sweep = sub.add_parser(
        "sweep", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="a paper table in one command: every cell of a sweep file a run, resumable, reported at the end",
        description="Run every cell of a sweep file (base config files x grid values, configs/sweeps/) as an "
                    "ordinary run folder under DIR/runs/<cell>, then write the report of the sweep to "
                    "DIR/report/report.md. Every cell is validated first. The same command again skips finished "
                    "runs, continues stopped or killed ones, waits for runs another process holds and retries "
                    "failed ones; DIR belongs to one sweep (another sweep file or other overrides are refused). "
                    "Exit code 0 when every cell finished, 1 when some did not, 2 on a refusal.",
        epilog=EXAMPLES)
    sweep.add_argument("sweep", nargs="?", metavar="SWEEP.yaml", help="the sweep file: base, grid, set")
    sweep.add_argument("--out", metavar="DIR", help="the sweep folder: runs/<cell>, report/, sweep.yaml")
    sweep.add_argument("--status", metavar="DIR", help="print one row per cell of the sweep in DIR and its state")
    sweep.add_argument("--dry-run", action="store_true",
                       help="print every cell's resolved config and check the data roots and weights files, "
                            "then exit; creates nothing")
    sweep.add_argument("--grid", action="append", default=[], metavar="key=v1,v2",
                       help="one more grid axis (repeatable), e.g. --grid run.seed=0,1,2")
    sweep.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local (default): processes of this machine; slurm: one SLURM job array through "
                            "submitit; submitit-local: the submitit path as processes of this machine")
    sweep.add_argument("--jobs", type=int, metavar="N", help="runs at a time (local default: one per visible GPU "
                                                             "times --per-gpu, 1 on the CPU)")
    sweep.add_argument("--per-gpu", type=int, metavar="K", help="runs sharing one GPU (local; default 1)")
    sweep.add_argument("--pack", type=int, default=1, metavar="K",
                       help="train up to K cells that may share a step as one packed process (act train --pack; "
                            "same data set, model, plans and switches; seeds and noise may differ); each keeps "
                            "its own run folder. A cell that cannot join a pack runs alone, and --status says why")
    sweep.add_argument("--max-cells", type=int, default=MAX_CELLS, metavar="N",
                       help=f"the most cells the sweep may have (default {MAX_CELLS}): a larger grid is refused "
                            f"before any config is built")
    sweep.add_argument("--slurm-partition", metavar="NAME", help="the SLURM partition")
    sweep.add_argument("--slurm-time", type=int, metavar="MINUTES", help="each job's time limit (slurm: "
                       "required); a run out of time is requeued and continues from its checkpoint")
    sweep.add_argument("--slurm-gpus-per-task", type=int, default=1, metavar="G",
                       help="GPUs of each job (default 1); above 1, the cell's act train runs under torchrun in "
                            "its job, one process per GPU")
    sweep.add_argument("--slurm-nodes", type=int, metavar="N",
                       help="nodes of each job (default 1); above 1, the cell's act train runs under torchrun on each "
                            "node, --slurm-gpus-per-task processes per node (at least 1), meeting on the first node")
    sweep.add_argument("--slurm-arg", action="append", default=[], metavar="key=value",
                       help="any other sbatch option (repeatable), e.g. --slurm-arg account=myproject")
    sweep.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides of every cell, e.g. "
                                                                         "data.root=/data/cifar-100-python")


def sweep_command(args: argparse.Namespace, stdout) -> int:
    if args.status:
        if args.sweep or args.out or args.overrides or args.grid:
            raise ActError("--status DIR takes nothing else: act sweep --status DIR")
        print(status(Path(args.status)), file=stdout)
        return 0
    if not (args.sweep and args.out):
        raise ActError("act sweep needs a sweep file and --out DIR (or --status DIR): act sweep SWEEP.yaml --out DIR")
    check_options(args)
    out = Path(os.path.abspath(args.out))
    sweep = read_sweep(args.sweep, args.overrides, args.grid, args.max_cells, Validating(stdout))
    ranks, nodes = job_shape(args)
    sweep, configs = adopt_names(out, sweep, check_cells(sweep, out / RUNS, args.executor != "slurm", ranks * nodes))
    local = local_processes(args, out, configs) if args.executor == "local" else None  # refusals before any folder
    found = preflight(configs)  # every data root and weights file, each once: all problems, before any folder
    if args.dry_run:
        print(f"{show_cells(configs)}# {verdict(found)}", file=stdout)
        return 0
    lock = open_folder(out, sweep, configs)
    try:
        epochs = {name: cfg.optim.epochs for name, cfg in configs.items()}
        controller = Controller(sweep, out, local or submitit_jobs(args, out), epochs, stdout,
                                Packer(configs, args.pack, out, machine=args.executor != "slurm"))
        done = controller.run()
        write_report(out, stdout)
    finally:
        lock.release()
    return 0 if done else 1


class Validating:
    """`tell` of read_sweep for a large sweep: a line when its validation begins, and one every
    DRAW_SECONDS as it goes."""

    def __init__(self, stream):
        self.stream, self.said = stream, 0.0

    def __call__(self, done: int, total: int) -> None:
        if total < VALIDATING_FROM or (done > 1 and time.monotonic() < self.said + DRAW_SECONDS):
            return
        self.said = time.monotonic()
        line = f"validating {total} cells" if done == 1 else f"validated {done} of {total} cells"
        print(line, file=self.stream, flush=True)


# sbatch options act sweep sets from its own (--slurm-arg may not set them: submitit would replace
# or repeat them, and a cell's processes would not match its job).
SBATCH_OF_ACT = {"nodes": "use --slurm-nodes", "time": "use --slurm-time", "partition": "use --slurm-partition",
                 "gpus-per-node": "use --slurm-gpus-per-task", "ntasks-per-node": "one task per node",
                 "ntasks": "one task per node", "array": "one job array of the sweep's cells",
                 "signal": "submitit's requeue signal"}


def check_options(args: argparse.Namespace) -> None:
    """The executor's options, checked before anything is read or created."""
    for name in ("jobs", "per_gpu", "slurm_time", "slurm_gpus_per_task", "slurm_nodes", "pack", "max_cells"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "slurm_gpus_per_task" else 1):
            raise ActError(f"--{name.replace('_', '-')} {value} must be at least {0 if 'gpus' in name else 1}")
    given = [f"--{name.replace('_', '-')}" for name in ("slurm_partition", "slurm_time") if getattr(args, name)]
    given += ["--slurm-arg"] if args.slurm_arg else []
    if args.executor == "local" and given:
        raise ActError(f"{given[0]} is an option of --executor slurm (or submitit-local)")
    if args.executor != "local" and args.per_gpu is not None:
        raise ActError("--per-gpu is an option of --executor local; a SLURM job has --slurm-gpus-per-task")
    if args.executor != "slurm" and args.slurm_nodes is not None:
        raise ActError("--slurm-nodes is an option of --executor slurm")
    ranks, nodes = job_shape(args)
    if args.pack > 1 and ranks * nodes > 1:
        torchrun = f"--slurm-nodes {nodes} runs each cell under torchrun on each node" if nodes > 1 else \
            f"--slurm-gpus-per-task {ranks} runs each cell under torchrun"
        raise ActError(f"--pack trains its cells in one process, and {torchrun}; give one of them")
    if args.executor == "slurm" and args.slurm_time is None:
        raise ActError("--executor slurm needs --slurm-time MINUTES (at most the partition's limit); a run longer "
                       "than it is requeued and continues from its checkpoint")
    for item in args.slurm_arg:
        if "=" not in item or not item.partition("=")[0].strip():
            raise ActError(f"--slurm-arg {item!r} is not of the form key=value (e.g. account=myproject)")
        key = item.partition("=")[0].strip().lstrip("-").replace("_", "-")
        if key in SBATCH_OF_ACT:
            raise ActError(f"--slurm-arg {item}: act sweep sets sbatch's --{key} itself ({SBATCH_OF_ACT[key]})")
        if key in ("gpus", "gpus-per-task") or (key == "gres" and "gpu" in item.partition("=")[2]):
            raise ActError(f"--slurm-arg {item}: act sweep asks for each job's GPUs itself (--gpus-per-node); "
                           f"use --slurm-gpus-per-task")
    if args.executor != "local":
        submitit_here(args.executor)


def submitit_jobs(args: argparse.Namespace, out: Path) -> SubmititJobs:
    """The submitit executor; its logs and pickles in DIR/submitit."""
    extra = {k.strip(): v for k, _, v in (item.partition("=") for item in args.slurm_arg)}
    executor = make_submitit(args.executor, out / SUBMITIT, args.slurm_time, args.slurm_partition,
                             args.slurm_gpus_per_task, extra, args.jobs, args.slurm_nodes or 1)
    local = args.executor == "submitit-local"
    return SubmititJobs(executor, out / RUNS, args.jobs or 1 if local else args.jobs, local, continuing(),
                        *job_shape(args))


def job_shape(args: argparse.Namespace) -> tuple[int, int]:
    """The processes per node and the nodes of each cell's job: (1, 1) but with --executor slurm,
    where a job of G GPUs runs G (one with 0 or 1), on each of --slurm-nodes."""
    if args.executor != "slurm":
        return 1, 1
    return max(1, args.slurm_gpus_per_task), args.slurm_nodes or 1


def cells_text(n: int) -> str:
    return f"{n} cell{'s' * (n != 1)}"


def continuing() -> str:
    """The command that continues this sweep, as it was typed (for a cancelled cell's line)."""
    argv = sys.argv[1:]
    return shlex.join(["act", *argv]) if argv[:1] == ["sweep"] else ""


def local_processes(args: argparse.Namespace, out: Path, configs: dict[str, Config]) -> LocalProcesses:
    """Processes of this machine: one per visible GPU times --per-gpu by default, 1 on the CPU."""
    gpus = visible_gpus()
    named = next((name for name, cfg in configs.items() if gpus and cfg.run.device.startswith("cuda:")), None)
    if named:
        raise ActError(f"cell {named}: run.device={configs[named].run.device} names one GPU, but act sweep gives each "
                       f"run a GPU of its own (CUDA_VISIBLE_DEVICES); use run.device=auto or cuda")
    if not gpus:
        if args.per_gpu is not None:
            raise ActError("--per-gpu shares a GPU, and this machine has none; --jobs N sets the runs at a time")
        return LocalProcesses(out / RUNS, args.jobs or 1, [])
    most = len(gpus) * (args.per_gpu or 1)
    if args.jobs is not None and args.jobs > most:
        raise ActError(f"--jobs {args.jobs} is more than the {len(gpus)} visible GPUs x --per-gpu {args.per_gpu or 1}; "
                       f"give --per-gpu {-(-args.jobs // len(gpus))} to share GPUs")
    return LocalProcesses(out / RUNS, args.jobs or most, gpus)


class Controller:
    """Runs the cells that are to run and waits for those another process holds, telling each
    run's end in one line and the progress (`draw`)."""

    def __init__(self, sweep: Sweep, out: Path, executor, epochs: dict[str, int], stream, packer: Packer | None = None):
        self.cells, self.out, self.runs, self.executor = sweep.cells, out, out / RUNS, executor
        self.epochs, self.stream, self.packer = epochs, stream, packer or Packer({}, 1, out)
        self.states = {cell.name: self.read(cell.name) for cell in self.cells}
        self.over: set[str] = set()  # the cells whose runs ended in this sweep: they train no more in it
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.drawn = 0.0 if self.tty else time.monotonic()  # a heartbeat comes after a minute of silence

    def read(self, name: str) -> CellState:
        return self.executor.seen(name, read_state(self.runs / name, self.epochs[name]))

    def run(self) -> bool:
        """True when every cell finished."""
        followed = self.executor.follow(self.cells)  # an earlier sweep's SLURM jobs, still queued or running
        pending = deque(self.packer.jobs([cell for cell in self.cells
                                          if self.states[cell.name].to_run and cell.name not in followed], self.states))
        waiting = [cell for cell in self.cells
                   if self.states[cell.name].kind == "running" and cell.name not in followed]
        self.say(f"sweep {self.out}: {cells_text(len(self.cells))} ({counts(self.states)}); "
                 f"{len(pending)} to run {self.executor.how}" +
                 (f"; following the SLURM jobs of {len(followed)} (an earlier act sweep's)" if followed else ""))
        try:
            while pending or waiting or self.executor.busy():
                for cell in list(waiting):  # held by another process: theirs until they let go
                    state = self.read(cell.name)
                    if state.kind != "running":
                        waiting.remove(cell)
                        pending.extend([Job((cell,))] if state.to_run else [])
                        self.tell(cell.name, state, ended=not state.to_run)
                room = min(self.executor.room(), len(pending))
                if room > 0:
                    self.executor.start([pending.popleft() for _ in range(room)])
                for job in self.executor.ended():
                    for cell in job.cells:
                        self.tell(cell.name, self.read(cell.name), ended=True)
                self.draw()
                time.sleep(self.executor.poll_seconds)
        except KeyboardInterrupt as exc:  # Ctrl-C reached the runs too; SIGTERM (Terminated) only this process
            what = self.executor.stop(grace=0.0 if isinstance(exc, Terminated) else 3.0)
            raise type(exc)(f"{what}; the same command continues the sweep (`act sweep --status {self.out}` "
                            f"shows where its runs are)") from None
        self.states = {cell.name: self.read(cell.name) for cell in self.cells}
        finished = sum(state.kind == "finished" for state in self.states.values())
        self.say(f"sweep {self.out}: {finished} of {cells_text(len(self.cells))} finished ({counts(self.states)})")
        return finished == len(self.cells)

    def tell(self, name: str, state: CellState, ended: bool) -> None:
        """One line for a run that ended (or found ended): how, and its figure or its log."""
        self.states[name] = state
        if not ended:
            return
        self.over.add(name)
        done = sum(s.kind == "finished" for s in self.states.values())
        how = f"RTM last-10 {state.rtm_last10:.2f} %" if state.rtm_last10 is not None else state.text
        log = "" if state.kind == "finished" else f" (log: {self.runs / name / 'console.log'})"
        self.say(f"[{done}/{len(self.cells)} finished] {name}: {how}{log}")

    def say(self, line: str) -> None:
        print(("\r\x1b[K" if self.tty else "") + line, file=self.stream, flush=True)

    def draw(self) -> None:
        """Where the sweep is, from its runs' folders (each read once a draw): on a terminal the
        progress line, redrawn every DRAW_SECONDS; else a heartbeat line every HEARTBEAT_SECONDS,
        so that a log shows the sweep alive between the lines of runs that end."""
        if time.monotonic() < self.drawn + (DRAW_SECONDS if self.tty else HEARTBEAT_SECONDS):
            return
        self.drawn = time.monotonic()
        for name, state in self.states.items():
            if state.kind != "finished":
                self.states[name] = self.read(name)
        states = self.states.values()
        done = sum(s.kind == "finished" for s in states)
        epochs = sum(s.epochs for s in states)
        total = sum(s.epochs if self.settled(name, s) else s.total for name, s in self.states.items())
        if self.tty:
            bar = "#" * (20 * done // len(self.cells))
            print(f"\r\x1b[K[{bar:<20}] {done}/{len(self.cells)} runs finished | {epochs}/{total} epochs | "
                  f"ETA {self.eta()}", end="", file=self.stream, flush=True)
            return
        running, pending = (sum(s.kind == kind for s in states) for kind in ("running", "pending"))
        queued = f"{pending} pending in SLURM's queue, " if pending else ""
        print(f"[{datetime.now():%H:%M:%S}] sweep {self.out.name}: {running} running, {queued}{done} of "
              f"{len(self.cells)} finished, epochs {epochs} of {total}, ETA {self.eta()}", file=self.stream, flush=True)

    def settled(self, name: str, state: CellState) -> bool:
        """Whether the cell trains no more in this sweep: finished, diverged (left as it is), or its
        run ended here without finishing (failed, cancelled, stopped by SLURM). Its epochs left are
        none: the ETA leaves them out, and the epochs to do count only those it did."""
        return state.kind in ("finished", "diverged") or name in self.over

    def eta(self) -> str:
        """The time the epochs left take at the median epoch time so far, the runs sharing the slots."""
        states = self.states.values()
        left = [s for name, s in self.states.items() if not self.settled(name, s)]
        epochs_left = sum(s.total - s.epochs for s in left)
        seconds = [s.epoch_seconds for s in states if s.epoch_seconds]
        slots = max(1, min(self.executor.slots or len(left), len(left)))
        return clock(epochs_left * statistics.median(seconds) / slots) if seconds and left else "-"


class Packer:
    """The jobs of the cells to run: with --pack K, the cells that may share a step (the same
    act/pack/compat.py pack_key) in packs of up to K, in the sweep's order; the others alone. Where
    each cell goes, and why a cell runs alone, is written to DIR/packs/plan.json for --status."""

    def __init__(self, configs: dict[str, Config], k: int, out: Path, machine: bool = True):
        self.configs, self.k, self.plan, self.machine = configs, k, out / PACKS / PLAN, machine

    def jobs(self, cells: list, states: dict[str, CellState] | None = None) -> list[Job]:
        """The jobs of `cells`. A cell whose last attempt failed runs alone (it would fail its pack
        again); cells pack only with cells at the same epoch (the ones behind would train alone first)."""
        if self.k <= 1:
            self.plan.unlink(missing_ok=True)  # an earlier --pack's grouping no longer holds
            return [Job((cell,)) for cell in cells]
        from act.pack.compat import pack_key, why_alone

        states = states or {}
        groups: dict[tuple, list] = {}
        jobs, plan = [], {}
        for cell in cells:
            state = states.get(cell.name)
            why = why_alone(self.configs[cell.name], self.machine) or (
                f"its last attempt failed ({state.text.removeprefix('failed: ')})" if state and state.kind == "failed"
                else None)
            if why:
                jobs.append(Job((cell,)))
                plan[cell.name] = f"alone: {why}"
            else:
                epochs = state.epochs if state else 0
                groups.setdefault((pack_key(self.configs[cell.name]), epochs), []).append(cell)
        for members in groups.values():
            for i in range(0, len(members), self.k):
                job = Job(tuple(members[i:i + self.k]))
                jobs.append(job)
                alone = "alone: no other cell shares its step" if len(members) == 1 else \
                    f"alone: left over from packs of {self.k} ({len(members)} cells share its step)"
                for cell in job.cells:
                    plan[cell.name] = f"pack {job.name}" if len(job.cells) > 1 else alone
        self.plan.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.plan, json.dumps(plan_of(self.plan, states, plan), indent=2))
        return jobs


def clock(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m" if minutes else f"{seconds:.0f}s"


def write_report(out: Path, stream) -> None:
    """`act report` of the sweep: DIR/report/report.md (and its curves), printed too."""
    from act.commands.report import report

    try:
        text = report([str(out / RUNS)], "md", out / REPORT)
    except ActError as exc:
        print(f"act sweep: no report: {exc}", file=stream)
        return
    print(f"\n{text}\nwrote {out / REPORT / 'report.md'}", file=stream)


def status(out: Path) -> str:
    """One row per cell of the sweep in `out`: its state and RTM last-10."""
    if not (out / RECORD).is_file():
        raise ActError(f"--status {out}: not a sweep folder (no {RECORD}); give the --out of an act sweep")
    record = read_record(out)
    default = Config().optim.epochs
    jobs = Jobs(out / SUBMITIT)
    jobs.look()
    states = {name: jobs.overlay(name, read_state(out / RUNS / name, cell["config"].get("optim.epochs", default)))
              for name, cell in record["cells"].items()}
    plan = plan_of(out / PACKS / PLAN, states, {}) if (out / PACKS / PLAN).exists() else None  # None: no --pack
    return f"sweep {record.get('sweep')} in {out}: {cells_text(len(states))} ({counts(states)})\n" + status_table(states, plan)


def plan_of(path: Path, states: dict[str, CellState], new: dict[str, str]) -> dict[str, str]:
    """Each cell's pack, or why it runs alone: the cells starting now as `new` says, the finished
    ones as their summaries say (the pack they trained in), the others as DIR/packs/plan.json said
    where it holds what act sweep writes (a mapping of cell to text)."""
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError):
        before = {}
    if not (isinstance(before, dict) and all(isinstance(v, str) for v in before.values())):
        before = {}
    told = {name: f"pack {s.pack}" for name, s in states.items() if s.pack is not None}
    return {**before, **told, **new}
