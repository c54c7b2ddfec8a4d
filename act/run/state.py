"""A run's state as its folder tells it: finished, running, stopped after k of E epochs,
diverged or broken. `act report` (its table of every run) and `act sweep` (what to run next,
`--status`) read it here; docs/runs.md, docs/reports.md, docs/sweeps.md."""
from __future__ import annotations

import fcntl
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from act.config import flatten, to_dict
from act.errors import ActError
from act.run.folder import DIVERGED, LOCK, METRICS, SUMMARY, RunFileError, RunFolder


@dataclass
class RunInfo:
    """One run folder as the report sees it; `config` and `history` are empty when unreadable."""

    path: Path
    state: str  # finished | running | stopped | diverged: ... | broken: ...
    config: dict = field(default_factory=dict)  # flat: {"data.name": ..., ...}
    summary: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    diverged: dict | None = None  # diverged.json: the epoch the loop stopped in, and why
    provenance: list[dict] = field(default_factory=list)  # provenance.json: each start and resume

    @property
    def finished(self) -> bool:
        return self.state == "finished"


def read_run(path: Path) -> RunInfo:
    """A run folder's files and its state; a file that cannot be read makes it `broken: <why>`."""
    run, folder = RunInfo(path=path, state=""), RunFolder(path)
    try:
        run.config = flatten(to_dict(folder.config()))
        run.history = folder.metrics()
        run.summary = folder.summary() or {}
        run.diverged = folder.diverged()
        run.provenance = folder.provenance()
    except RunFileError as exc:
        run.state = f"broken: {exc.why}"
        return run
    total = run.config.get("optim.epochs")
    if run.summary and (len(run.history) > run.summary.get("epochs", 0) or 0 < len(run.history) < total):
        run.summary = {}  # a stale one: the run was resumed for more epochs and has not finished them
    if divergence(run):
        run.state = divergence(run)
    elif not run.summary:
        run.state = "running" if is_locked(path) else "stopped"
        run.state += f" after {len(run.history)} of {total} epochs"
    else:
        run.state = "finished"
    return run


def read_back(path: Path) -> None:
    """A run a command has just ended, read back as report and sweep read it: one line saying why
    where it does not read back finished (a record that did not reach the disk whole)."""
    run = read_run(path)
    if not run.finished:
        raise ActError(f"run {path} ended, but its folder reads back {run.state}, not finished; "
                       f"`act train --resume {path}` rewrites its records from its checkpoint")


def is_locked(path: Path) -> bool:
    """Whether a process holds the run folder's lock (act/run/folder.py), i.e. is training it now."""
    try:
        with os.fdopen(os.open(path / LOCK, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)) as lock:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(lock, fcntl.LOCK_UN)
            return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def divergence(run: RunInfo) -> str:
    """Where the run's numbers stopped being finite (the loop's diverged.json, NaN or inf in
    metrics.jsonl or the summary), or ""."""
    if run.diverged is not None and not is_locked(run.path):  # a resume under way has not diverged (yet)
        return f"diverged: {run.diverged['why']} ({DIVERGED})"
    for record in run.history:
        bad = [key for key, value in record.items() if isinstance(value, float) and not math.isfinite(value)]
        if bad:
            return f"diverged: {bad[0]}={record[bad[0]]} at epoch {record.get('epoch')} ({METRICS})"
    bad = [f"{part}.{key}" for part in ("rtm", "ntm") for key, value in run.summary.get(part, {}).items()
           if isinstance(value, float) and not math.isfinite(value)]
    return f"diverged: {bad[0]} is not finite ({SUMMARY})" if bad else ""
