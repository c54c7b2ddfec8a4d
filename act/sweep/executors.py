"""The processes of a sweep. Each job is one `act train` process that starts its cell's run, or
continues it (`--resume`) when its folder holds one; the process's console goes to the run's
console.log, framed by an attempt line and an exit line (act/sweep/state.py).

Executors: `LocalProcesses` on this machine, at most `jobs` at a time, each pinned to a GPU
(CUDA_VISIBLE_DEVICES), and `SubmititJobs`: one SLURM job array through submitit, or submitit's
local executor (the same path, as processes of this machine). A submitit task follows submitit's
checkpointing protocol (`Task.checkpoint`): preempted or out of time, it stops the run, whose
last epoch is on disk, and is requeued, and the requeued task continues the run.
"""
from __future__ import annotations

import ctypes
import functools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from act.config import DATA_PLACES
from act.errors import ActError
from act.run.files import write_text
from act.run.folder import CONFIG, CONSOLE
from act.sweep.spec import Cell
from act.sweep.slurm import POLL_SECONDS, Jobs, signal_delay
from act.sweep.state import ATTEMPT, CellState, exit_line, pack_name, read_state

PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies (Linux)
TASK_FAILED = 1  # the exit code a cell's log gets when its submitit task failed around the run
# How many times a task out of time is requeued before submitit gives it up (preemptions do not
# count): a run longer than --slurm-time continues over this many jobs.
MAX_REQUEUES = 100


# What a rerun passes to a cell's resume where its run recorded another value (act/sweep/spec.py
# FREE_KEYS but the folder's own keys).
RESUMED_AS_GIVEN = (*DATA_PLACES, "run.progress", "run.plots", "run.tensorboard", "run.wandb")
# torchrun as a cell of several processes runs it: torch.distributed.run, ending as act train does
# when SLURM stops the job (143 for SIGTERM, no traceback).
TORCHRUN = "act.sweep.torchrun"
SUBMITIT = "submitit"  # DIR/submitit: submitit's logs and pickles, and the record of the SLURM jobs (jobs.json)
PACKS = "packs"  # DIR/packs/<job>.yaml: the members of a packed job (act train --pack); <job>.log: its console
# DIR/submitit/nodes/<job>.<restart>.json: what the first node of a cell of several nodes decided for
# this attempt of its job (whether the cell runs, its act train, where the ranks meet); the other
# nodes read it, and wait for it at most NODES_WAIT_S.
NODES = "nodes"
NODES_WAIT_S = 600.0


@dataclass(frozen=True)
class Job:
    """What one process trains: one cell, or with `act sweep --pack K` up to K cells that may share
    a step (act/pack/compat.py), trained as one pack that writes each cell's own run folder."""

    cells: tuple[Cell, ...]

    @property
    def name(self) -> str:
        return pack_name([cell.name for cell in self.cells])


def job_command(job: Job, runs: Path, ranks: int = 1) -> list[str]:
    """The process of a job: `act train` of its one cell, or `act train --pack` of its pack file;
    for a cell of several GPUs, its `act train` under torchrun, one process (rank) per GPU."""
    if len(job.cells) > 1:
        return [sys.executable, "-m", "act", "train", "--pack", str(write_pack(job, runs))]
    argv = train_command(job.cells[0], runs)
    return argv if ranks <= 1 else [sys.executable, "-m", TORCHRUN, "--standalone", f"--nproc_per_node={ranks}",
                                    *argv[1:]]


def nodes_command(train: list[str], nodes: int, node: int, ranks: int, host: str, port: int) -> list[str]:
    """The process of one node of a cell that spans `nodes` machines: torchrun with its node rank,
    `ranks` processes here, meeting the others at the first node's `host:port` (torchrun's static
    rendezvous); `train` is the cell's `act train`, the same on every node."""
    return [sys.executable, "-m", TORCHRUN, f"--nnodes={nodes}", f"--node_rank={node}",
            f"--nproc_per_node={ranks}", f"--master_addr={host}", f"--master_port={port}", *train[1:]]


def shown(argv: list[str]) -> str:
    """A job's process as a user would type it: `act train ...`, or `torchrun ... -m act train ...`."""
    return shlex.join(["act" if argv[2] == "act" else "torchrun", *argv[3:]])


def write_pack(job: Job, runs: Path) -> Path:
    """DIR/packs/<job>.yaml: each member's config file and overrides (its folder: DIR/runs/<cell>)."""
    import yaml

    members = [{"config": str(cell.base), "overrides": [*cell.overrides, *cell.folder_keys(runs)]}
               for cell in job.cells]
    path = runs.parent / PACKS / f"{job.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, yaml.safe_dump({"runs": members}, sort_keys=False))
    return path


class JobConsole:
    """Where a job's process writes: its cell's console.log; for a pack, DIR/packs/<job>.log, and
    each member's console.log frames the attempt (its ATTEMPT and EXIT lines name the pack's log)."""

    def __init__(self, job: Job, runs: Path, argv: list[str]):
        self.members: list[IO[str]] = []
        if len(job.cells) == 1:
            self.log = open_console(runs / job.cells[0].name / CONSOLE, argv)
            return
        self.log = open_console(runs.parent / PACKS / f"{job.name}.log", argv)
        note = f" (a pack of {len(job.cells)}; its console: {self.log.name})"
        self.members = [open_console(runs / cell.name / CONSOLE, argv, note) for cell in job.cells]

    def close(self, code: int, why: str = "") -> None:
        close_console(self.log, code, why)
        last = "" if code == 0 or why else last_line(Path(self.log.name))
        for member in self.members:
            close_console(member, code, why or last)


def last_line(path: Path) -> str:
    """The last line a process wrote to its log (a failed pack's reason, for each member's log)."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if line.strip() and not line.startswith("act sweep: ")]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def train_command(cell: Cell, runs: Path) -> list[str]:
    """`act train` for the cell: a new run, or --resume where its folder holds one."""
    folder = runs / cell.name
    if (folder / CONFIG).is_file():
        return [sys.executable, "-m", "act", "train", "--resume", str(folder), *moved_data(cell, runs)]
    return [sys.executable, "-m", "act", "train", "--config", str(cell.base), *cell.overrides, *cell.folder_keys(runs)]


def moved_data(cell: Cell, runs: Path) -> list[str]:
    """The keys a rerun may change where the cell's run recorded others, for its resume: the data
    places (data.root, pipeline.path: the data moved, and the resume's data fingerprint checks
    that they are the same data) and how the run shows itself (progress, plots, TensorBoard, W&B)."""
    from act.run.loop import resume_overrides

    try:
        return resume_overrides(cell.config(runs), runs / cell.name, f"cell {cell.name}", RESUMED_AS_GIVEN)
    except ActError:
        return []  # act train --resume names what is wrong


def open_console(path: Path, argv: list[str], note: str = "") -> IO[str]:
    """A console log (a run's console.log, a pack's log), opened to append an attempt: its first
    line says when, where and what."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "a", encoding="utf-8")
    when = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    log.write(f"{ATTEMPT}at {when} on {socket.gethostname()}: {shown(argv)}{note}\n")
    log.flush()
    return log


def close_console(log: IO[str], code: int, why: str = "") -> None:
    log.write(f"{why}\n" if why else "")
    log.write(exit_line(code) + "\n")
    log.close()


@functools.cache
def libc() -> ctypes.CDLL | None:
    return ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def in_child(parent: int, ignore_usr2: bool) -> None:
    """In the forked child before `act train` runs: SIGTERM (a stop act reports, its last epoch on
    disk) when the process that started it dies, so that no run outlives its sweep unwatched; and
    in a submitit task, SIGUSR2 (the preemption signal) left to the task."""
    if libc() is not None:
        libc().prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before the line above
            os._exit(143)
    if ignore_usr2:
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def start(argv: list[str], log: IO[str], ignore_usr2: bool = False, gpu: str | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    libc()  # loaded here, not in the forked child
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                            preexec_fn=functools.partial(in_child, os.getpid(), ignore_usr2))


def free_port() -> int:
    """A TCP port free on this machine now (the first node's, where a cell's ranks meet)."""
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def this_attempts_plan(folder: Path) -> Path:
    """DIR/submitit/nodes/<job>.<restart>.json of this task's job and attempt, the job named as
    submitit and act sweep name it: "5_0" for task 0 of array 5."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID", "local")
    return folder / NODES / f"{job}.{os.environ.get('SLURM_RESTART_COUNT', '0')}.json"


def forget_plans(folder: Path, held: set[str]) -> None:
    """Remove the first nodes' words (DIR/submitit/nodes/) of every job but those SLURM still holds
    for this sweep: a job of a later submission may bear an old one's id (a cluster whose job ids
    began again), and its other nodes must not read the old job's word."""
    for plan in (folder / NODES).glob("*.json"):
        if plan.name.rsplit(".", 2)[0] not in held:
            plan.unlink(missing_ok=True)


def wait_for_plan(path: Path) -> dict | None:
    """What the first node of a cell wrote for this attempt (Task.on_nodes); None if it has not
    within NODES_WAIT_S (its file may take a moment to show on a shared file system)."""
    deadline = time.monotonic() + NODES_WAIT_S
    while time.monotonic() < deadline:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            time.sleep(0.5)
    return None


def visible_gpus() -> list[str]:
    """The GPUs this process sees, as CUDA_VISIBLE_DEVICES names them to a child."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    listed = [name.strip() for name in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if name.strip()]
    return (listed or [str(i) for i in range(count)])[:count]


class LocalProcesses:
    """`act train` processes on this machine, at most `jobs` at a time; where there are GPUs, each
    pinned to the one that has the fewest of them."""

    poll_seconds = 0.5

    def __init__(self, runs: Path, jobs: int, gpus: list[str]):
        self.runs, self.slots, self.gpus = runs, jobs, gpus
        self.how = f"{jobs} at a time " + (f"on GPUs {','.join(gpus)}" if gpus else "on the CPU")
        self.running: dict[subprocess.Popen, tuple[Job, str | None, JobConsole]] = {}

    def room(self) -> int:
        return self.slots - len(self.running)

    def busy(self) -> bool:
        return bool(self.running)

    def seen(self, name: str, state: CellState) -> CellState:
        return state  # the folder says all: no queue between the sweep and its processes

    def follow(self, cells: list[Cell]) -> set[str]:
        return set()  # an earlier sweep's processes ended with it

    def start(self, jobs: list[Job]) -> None:
        for job in jobs:
            gpu = self.free_gpu()
            argv = job_command(job, self.runs)
            console = JobConsole(job, self.runs, argv)
            self.running[start(argv, console.log, gpu=gpu)] = (job, gpu, console)

    def free_gpu(self) -> str | None:
        """The GPU with the fewest of this sweep's runs (None on a machine without one)."""
        if not self.gpus:
            return None
        load = {gpu: 0 for gpu in self.gpus}
        for _, gpu, _ in self.running.values():
            load[gpu] += 1
        return min(self.gpus, key=lambda gpu: load[gpu])

    def ended(self) -> list[Job]:
        done = []
        for process, (job, _, console) in list(self.running.items()):
            code = process.poll()
            if code is not None:
                console.close(code)
                del self.running[process]
                done.append(job)
        return done

    def stop(self, grace: float = 3.0) -> str:
        """Every run stopped as SIGTERM stops it (its last epoch on disk), after `grace` seconds in
        which a Ctrl-C that reached them too may stop them first; says so."""
        deadline = time.monotonic() + grace
        while self.running and time.monotonic() < deadline and any(p.poll() is None for p in self.running):
            time.sleep(0.1)
        for process in self.running:
            if process.poll() is None:
                process.terminate()
        for process, (_, _, console) in self.running.items():
            console.close(process.wait())
        self.running.clear()
        return "the sweep's runs stopped at their last checkpoints"


class Task:
    """A sweep job as a submitit task: trains its cells as LocalProcesses does. Preempted or out of
    time (SIGUSR2 from SLURM, or from submitit's local executor), `checkpoint` stops the run and
    hands submitit a fresh task of the same job to requeue; it continues the run from its folder."""

    def __init__(self, runs: Path, cwd: Path, ranks: int = 1, nodes: int = 1):
        self.runs, self.cwd, self.ranks, self.nodes = runs, cwd, ranks, nodes
        self.process: subprocess.Popen | None = None
        self.console: JobConsole | None = None

    def __getstate__(self) -> dict:
        return {"runs": self.runs, "cwd": self.cwd, "ranks": self.ranks, "nodes": self.nodes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["runs"], state["cwd"], state.get("ranks", 1), state.get("nodes", 1))

    def __call__(self, job: Job) -> int | None:
        """The job's `act train` to its end; None when none of its cells is to run (finished,
        diverged, or held by another process: a second submission of cells done or under way)."""
        if self.nodes > 1:
            return self.on_nodes(job)
        job = self.to_run(job)
        if not job.cells:
            return None
        argv = job_command(job, self.runs, self.ranks)
        self.console = JobConsole(job, self.runs, argv)
        return self.run(argv, self.console.log)

    def to_run(self, job: Job) -> Job:
        """The job's cells that are to run now, as their folders say."""
        return Job(tuple(cell for cell in job.cells if read_state(self.runs / cell.name, 0).to_run))

    def run(self, argv: list[str], log: IO[str]) -> int:
        self.process = start(argv, log, ignore_usr2=True, cwd=self.cwd)
        while (code := self.process.poll()) is None:  # not wait(): `checkpoint` may reap it from a signal handler
            time.sleep(0.5)
        if self.console is not None:
            self.console.close(code)
        self.process = None
        return code

    def on_nodes(self, job: Job) -> int | None:
        """A cell of several nodes: this task is one of the job's tasks, one per node (SLURM_NODEID).
        The first node decides, for this attempt of the job, whether the cell runs and with which
        `act train` (a start or a resume: the other nodes must run the same one, and by the time
        they look the first may have begun it), and where the ranks meet: its host and a free port.
        It writes that to DIR/submitit/nodes/ for the others, runs its torchrun and frames the
        attempt in the run's console.log; the other nodes run theirs, their console in their
        task's submitit log. Only the first node's task is checkpointed by submitit (its requeue
        ends the others)."""
        node = int(os.environ.get("SLURM_NODEID", "0"))
        plan_file = this_attempts_plan(self.runs.parent / SUBMITIT)
        if node == 0:
            plan: dict = {"run": False}
            try:
                job = self.to_run(job)
                if job.cells:  # one: a cell of several nodes is never packed (act/commands/sweep.py check_options)
                    plan = {"run": True, "train": train_command(job.cells[0], self.runs),
                            "host": socket.gethostname(), "port": free_port()}
            finally:  # the other nodes wait for a word, even when this node fails before it knows
                plan_file.parent.mkdir(parents=True, exist_ok=True)
                write_text(plan_file, json.dumps(plan))
        else:
            plan = wait_for_plan(plan_file)
            if plan is None:
                print(f"act sweep: node {node}: the first node of job {plan_file.stem} wrote no {plan_file} within "
                      f"{NODES_WAIT_S:.0f} s; this node does not run", flush=True)
                return TASK_FAILED
        if not plan["run"]:
            return None
        argv = nodes_command(plan["train"], self.nodes, node, self.ranks, plan["host"], plan["port"])
        if node == 0:
            self.console = JobConsole(job, self.runs, argv)
            return self.run(argv, self.console.log)
        print(f"act sweep: node {node}: {shown(argv)}", flush=True)
        return self.run(argv, sys.stdout)

    def checkpoint(self, job: Job):
        """submitit's requeue hook: the run stopped by SIGTERM (its last completed epoch is on disk)."""
        from submitit.helpers import DelayedSubmission

        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                code = os.waitstatus_to_exitcode(os.waitpid(process.pid, 0)[1])
            except ChildProcessError:  # reaped by the task's own poll meanwhile
                code = process.returncode
            self.console.close(code, "act sweep: preempted or out of time: the task is requeued")
        return DelayedSubmission(Task(self.runs, self.cwd, self.ranks, self.nodes), job)


class SubmititJobs:
    """The sweep's jobs as submitit jobs: at most `jobs` at a time (submitit's local executor), or
    all at once as one SLURM job array (at most `jobs` running, when given). A SLURM job is followed
    until SLURM lets it go (act/sweep/slurm.py): its task may end with its run stopped and the job
    be requeued, and an earlier act sweep's jobs still queued or running are followed, not submitted
    again."""

    def __init__(self, executor, runs: Path, jobs: int | None, local: bool, command: str = "", ranks: int = 1,
                 nodes: int = 1):
        self.executor, self.runs, self.local, self.slots, self.ranks, self.nodes = executor, runs, local, jobs, ranks, nodes
        self.poll_seconds = 1.0 if local else POLL_SECONDS
        self.how = f"{jobs} at a time as submitit local jobs" if local else \
            "as one SLURM job array" + (f", {jobs} at a time" if jobs else "") + \
            (f", each cell on {nodes} nodes" if nodes > 1 else "")
        self.running: dict = {}
        self.slurm = None if local else Jobs(Path(executor.folder), command)
        if self.slurm is not None:
            self.slurm.look()  # the cells' states read from here on carry SLURM's word

    def room(self) -> int:
        return self.slots - len(self.running) if self.local else sys.maxsize

    def busy(self) -> bool:
        return bool(self.running)

    def seen(self, name: str, state: CellState) -> CellState:
        """The cell's state as its folder says it, with SLURM's word on it (pending, cancelled)."""
        return state if self.slurm is None else self.slurm.overlay(name, state)

    def follow(self, cells: list[Cell]) -> set[str]:
        """The cells whose SLURM jobs (an earlier act sweep's) SLURM still holds: followed as this
        sweep's jobs."""
        if self.slurm is None:
            return set()
        held: dict[str, list[Cell]] = {}
        for cell in cells:
            job_id = self.slurm.job(cell.name)
            if self.slurm.held(job_id):
                held.setdefault(job_id, []).append(cell)
        for job_id, members in held.items():
            self.running[self.executor.job_class(folder=self.executor.folder, job_id=job_id)] = Job(tuple(members))
        return {cell.name for members in held.values() for cell in members}

    def start(self, jobs: list[Job]) -> None:
        task = Task(self.runs, Path.cwd(), self.ranks, self.nodes)
        if self.nodes > 1:
            forget_plans(Path(self.executor.folder), {handle.job_id for handle in self.running})
        try:
            with self.executor.batch():
                handles = [self.executor.submit(task, job) for job in jobs]
        except Exception as exc:  # sbatch missing or refusing: what it said, in one line
            raise ActError(f"submitit could not submit the sweep's jobs: {' '.join(str(exc).split())[:500]}") from exc
        self.running.update(zip(handles, jobs))
        for handle, job in zip(handles, jobs):
            if self.slurm is not None:
                self.slurm.submitted([cell.name for cell in job.cells], handle.job_id)

    def ended(self) -> list[Job]:
        """The jobs that ended since the last call: a local one when its task ended, a SLURM one
        when SLURM no longer holds it (none while squeue does not answer)."""
        if self.slurm is not None and not self.slurm.look():
            return []
        over = [handle for handle in self.running
                if (handle.done() if self.slurm is None else not self.slurm.held(handle.job_id))]
        done = [self.running.pop(handle) for handle in over]
        for handle, job in zip(over, done):
            if self.slurm is not None:
                self.slurm.ended([cell.name for cell in job.cells], self.slurm.end_of(handle.job_id))
            self.tell_failure(handle, job)
        return done

    def tell_failure(self, handle, job: Job) -> None:
        """Where the task itself failed (not its run), each cell's log says so. A SLURM task that
        left no result was killed, and its cells' folders say how far their runs got."""
        if not (self.local or handle.paths.result_pickle.exists()):
            return
        try:
            handle.task(0).result()  # a job of several nodes: its first node's task, which ran the cell's attempt
        except Exception as exc:
            said = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            for cell in job.cells:
                (self.runs / cell.name).mkdir(parents=True, exist_ok=True)
                with open(self.runs / cell.name / CONSOLE, "a", encoding="utf-8") as log:
                    log.write(f"submitit job {handle.job_id} failed: {said}\n{exit_line(TASK_FAILED)}\n")

    def stop(self, grace: float = 0.0) -> str:
        """Local jobs are cancelled (their runs stop at their last epoch); SLURM's go on. Says which."""
        if self.local:
            for handle in self.running:
                handle.cancel(check=False)
        self.running.clear()
        return "the sweep's runs stopped at their last checkpoints" if self.local else \
            "its SLURM jobs go on (scancel stops them; the same command follows them again)"


def submitit_here(kind: str):
    """The submitit module, where `kind`'s executor can run here; one line where it cannot."""
    try:
        import submitit
    except ImportError:
        raise ActError(f'--executor {kind} needs submitit: pip install "submitit>=1.5"') from None
    if kind == "slurm" and not (shutil.which("srun") and shutil.which("sbatch")):
        raise ActError("--executor slurm needs SLURM's srun and sbatch, and this machine has none: run act sweep on "
                       "the cluster's login node (--executor submitit-local runs the same path here)")
    return submitit


def make_submitit(kind: str, folder: Path, time_min: int | None, partition: str | None, gpus: int,
                  extra: dict[str, str], jobs: int | None, nodes: int = 1):
    """A submitit executor: `slurm` (one job array), or `submitit-local` (its local executor)."""
    submitit = submitit_here(kind)
    if kind == "submitit-local":
        executor = submitit.LocalExecutor(folder=folder, max_num_timeout=MAX_REQUEUES)
        executor.update_parameters(timeout_min=time_min or 7 * 24 * 60, gpus_per_node=min(gpus, len(visible_gpus())))
        return executor
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=MAX_REQUEUES)
    executor.update_parameters(time=time_min, partition=partition, nodes=nodes, gpus_per_node=gpus, ntasks_per_node=1,
                               job_name="act-sweep", additional_parameters=extra, signal_delay_s=signal_delay(time_min),
                               **({"array_parallelism": jobs} if jobs else {}))
    return executor
