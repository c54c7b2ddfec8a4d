"""What SLURM says of a sweep's jobs, where the run folders cannot say it: a job queued, requeued
or cancelled.

DIR/submitit/jobs.json records each cell's SLURM job (its array task, "5_0") as act sweep submits
it, and how the job ended where SLURM said so. The controller follows the job, not its first
attempt: a task whose run stopped because SLURM requeued it (`scontrol requeue`, preemption with
PreemptMode=REQUEUE, a time limit) is still SLURM's while squeue lists it, and the cell ends when
the job does. States come from `squeue -t all` (it lists a job for MinJobAge after its end) and,
for a job squeue no longer lists, from sacct where the cluster keeps accounting; neither prints
into the sweep's output.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from act.run.files import write_text
from act.sweep.state import CellState

JOBS = "jobs.json"  # DIR/submitit/jobs.json: {"command": ..., "cells": {cell: {"job": id, "ended": state}}}
# SLURM's states of a job it still holds: it runs, or runs again, later.
HELD = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "COMPLETING", "CONFIGURING",
                  "SUSPENDED", "PREEMPTED", "RESIZING", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD", "SPECIAL_EXIT"})
RUNNING = ("RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT")
GONE = "GONE"  # how a job ended that neither squeue nor sacct knows any more
FIELDS = ("JobArrayID", "State", "Reason", "NodeList", "RestartCnt")
SLURM_TIMEOUT_S = 60  # squeue or sacct that has not answered by then is taken as failed this time
POLL_SECONDS = 5.0  # how often the controller asks squeue: one call for the whole job array
SIGNAL_DELAY_S = 90  # submitit's: a job is told to stop this long before its time limit (at most)


def signal_delay(time_min: int) -> int:
    """Seconds before its time limit that a job is told to stop (SIGUSR2): submitit's 90, or a
    quarter of a limit under 6 minutes, which 90 s would end as soon as it starts."""
    return min(SIGNAL_DELAY_S, time_min * 15)


@dataclass(frozen=True)
class JobView:
    """One job as SLURM shows it."""

    id: str
    state: str  # SLURM's: PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT, ...
    reason: str = ""
    node: str = ""
    restarts: int = 0

    @property
    def held(self) -> bool:
        return self.state in HELD

    @property
    def text(self) -> str:
        """"pending: BeginTime (job 5_0, requeued 1 time)", "running on node gpu7 (job 5_1)"."""
        what = f"pending: {self.reason}" if self.state == "PENDING" else \
            f"running on node {self.node}" if self.state == "RUNNING" else self.state.lower()
        again = f", requeued {self.restarts} time{'s' * (self.restarts != 1)}" if self.restarts else ""
        return f"{what} (job {self.id}{again})"


def squeue(ids: set[str]) -> dict[str, JobView] | None:
    """SLURM's view of the jobs `ids` (array tasks) in one squeue call: those it still lists, ended
    ones included; None where squeue did not answer."""
    arrays = sorted({job.split("_")[0] for job in ids})
    said = call(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(arrays), "-O", ",".join(f"{f}:|" for f in FIELDS)])
    if said is None:
        return None
    views = {}
    for line in said.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) > len(FIELDS) and parts[1]:
            job, state, reason, node, restarts = parts[:len(FIELDS)]
            views[job] = JobView(job, state.split()[0], reason, node, int(restarts) if restarts.isdigit() else 0)
    return views


def sacct(ids: set[str]) -> dict[str, str]:
    """The final states of jobs squeue no longer lists, where the cluster keeps accounting (else none)."""
    arrays = sorted({job.split("_")[0] for job in ids})
    said = call(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(arrays)]) or ""
    states = dict(line.split("|", 1) for line in said.splitlines() if line.count("|") == 1)
    return {job: state.split()[0] for job, state in states.items() if job in ids and state.strip()}


def call(argv: list[str]) -> str | None:
    """What a SLURM command printed; "" for jobs it does not know, None where it failed (its
    complaint kept out of the sweep's output: a cluster without accounting says so at every call)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=SLURM_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return "" if "Invalid job id" in done.stderr else None
    return done.stdout


class Jobs:
    """The sweep's record of its SLURM jobs (DIR/submitit/jobs.json), and SLURM's view of the jobs
    not known to have ended, as of the last `look`."""

    def __init__(self, folder: Path, command: str = ""):
        self.path = folder / JOBS
        try:
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
            record = {}
        cells = record.get("cells") if isinstance(record, dict) else None
        self.cells: dict[str, dict] = {name: entry for name, entry in (cells or {}).items()
                                       if isinstance(entry, dict) and isinstance(entry.get("job"), str)}
        self.command = command or (record.get("command") if isinstance(record, dict) else "") or ""
        self.views: dict[str, JobView] = {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.path, json.dumps({"command": self.command, "cells": self.cells}, indent=2))

    def submitted(self, names: list[str], job: str) -> None:
        for name in names:
            self.cells[name] = {"job": job, "ended": None}
        self.save()

    def ended(self, names: list[str], how: str | None) -> None:
        for name in names:
            self.cells[name]["ended"] = how or GONE
        self.save()

    def job(self, name: str) -> str | None:
        return self.cells[name]["job"] if name in self.cells else None

    def look(self) -> bool:
        """SLURM's view of the jobs not known to have ended; False where squeue did not answer."""
        ids = {entry["job"] for entry in self.cells.values() if entry.get("ended") is None}
        views = squeue(ids) if ids else {}
        if views is None:
            return False
        self.views = views
        return True

    def held(self, job: str | None) -> bool:
        view = self.views.get(job or "")
        return view is not None and view.held

    def end_of(self, job: str) -> str | None:
        """How a job SLURM no longer holds ended: squeue's last word, sacct's, or None."""
        view = self.views.get(job)
        return view.state if view is not None else sacct({job}).get(job)

    def overlay(self, name: str, state: CellState) -> CellState:
        """The cell's state with SLURM's word on it: pending or running while SLURM holds its job,
        cancelled where the job was cancelled before its run finished."""
        job = self.job(name)
        if job is None or state.kind in ("finished", "diverged"):
            return state
        view = self.views.get(job)
        if view is not None and view.held:
            done = f", {state.epochs} of {state.total} epochs done" if state.epochs else ""
            return replace(state, kind="running" if view.state in RUNNING else "pending", text=view.text + done)
        how = view.state if view is not None else self.cells[name].get("ended")
        if how == "CANCELLED":
            again = f"; `{self.command}` continues it" if self.command else "; the same act sweep continues it"
            return replace(state, kind="cancelled",
                           text=f"cancelled (job {job}) after {state.epochs} of {state.total} epochs{again}")
        if how in (None, "COMPLETED", GONE):
            return state
        return replace(state, text=f"{state.text} (its SLURM job {job}: {how.lower()})")  # TIMEOUT, NODE_FAIL, ...
