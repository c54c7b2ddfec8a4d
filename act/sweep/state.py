"""A cell's state, read from its run folder (as `act report` reads a run) and from the console
log its attempts left there: queued, running, stopped after k of E, finished, diverged, failed.

Each attempt at a cell (a start or a resume by `act train`) is framed in the run's console.log by
two lines of act sweep's: ATTEMPT when it begins, EXIT with the exit code when it ends. An
attempt killed with its controller has no EXIT line: it reads as stopped.
"""
from __future__ import annotations

import re
import signal
from dataclasses import dataclass, replace
from pathlib import Path

from act.run.state import is_locked, read_run
from act.run.folder import CONFIG, CONSOLE

ATTEMPT = "act sweep: attempt "
EXIT = "act sweep: act train ended with exit code "
# Exit codes of a run stopped by Ctrl-C or SIGTERM (act/commands/cli.py), or killed by them: it
# continues from its checkpoint. Any other non-zero code is a failure.
STOPPED = (130, 143, -signal.SIGINT, -signal.SIGTERM)
TAIL_BYTES = 65536  # how much of a console log is read for its last attempt


@dataclass(frozen=True)
class CellState:
    kind: str  # queued | running | stopped | finished | diverged | failed; pending | cancelled (SLURM's word)
    text: str  # as `act sweep --status` shows it
    epochs: int  # epochs done
    total: int  # epochs of the run (optim.epochs)
    rtm_last10: float | None = None  # finished runs
    epoch_seconds: float | None = None  # the last epoch's, for the sweep's ETA
    pack: str | None = None  # finished runs: the pack it trained in, as its summary names it (pack_name)

    @property
    def to_run(self) -> bool:
        """Whether the sweep starts or continues the cell: a finished or diverged run (it would
        diverge again) is left as it is, a running one to the process that holds it, a pending one
        to SLURM; a cancelled one is continued by the next act sweep."""
        return self.kind in ("queued", "stopped", "failed", "cancelled")


def read_state(folder: Path, total: int) -> CellState:
    """The state of the cell whose run folder is `folder` (it may not exist yet); `total` is the
    run's epochs before its config.yaml says them."""
    if not (folder / CONFIG).is_file():
        if folder.is_dir() and is_locked(folder):
            return CellState("running", "running (starting)", 0, total)
        return after_last_attempt(CellState("queued", "queued", 0, total), folder)
    run = read_run(folder)
    total = run.config.get("optim.epochs", total)
    seconds = run.history[-1].get("epoch_seconds") if run.history else None
    state = CellState("stopped", run.state, len(run.history), total, epoch_seconds=seconds)
    if run.finished:
        packed = run.summary.get("packed")
        members = packed.get("members") if isinstance(packed, dict) else None
        pack = pack_name(members) if isinstance(members, list) and len(members) > 1 else None
        return replace(state, kind="finished", rtm_last10=run.summary["rtm"]["last10_mean"], pack=pack)
    if run.state.startswith("running"):
        return replace(state, kind="running")
    if run.state.startswith("diverged"):
        return replace(state, kind="diverged")
    if run.state.startswith("broken"):
        return replace(state, kind="failed")
    return after_last_attempt(state, folder)


def pack_name(members: list[str]) -> str:
    """A job's name: its cell's, or a pack's first member's and how many more ("demo-sym20-seed0+3")."""
    return members[0] if len(members) == 1 else f"{members[0]}+{len(members) - 1}"


def after_last_attempt(state: CellState, folder: Path) -> CellState:
    """`state`, or failed when the last attempt ended with a failure's exit code (a diverged run's
    folder says so itself: act/run/state.py)."""
    ended = last_attempt(folder / CONSOLE)
    if ended is None or ended[0] == 0 or ended[0] in STOPPED:
        return state
    line = ended[1].removeprefix("act: error: ")
    return replace(state, kind="failed", text=f"failed: {line}")


def last_attempt(log: Path) -> tuple[int, str] | None:
    """The exit code of the log's last attempt and the last line that attempt printed; None when
    the log has no ended attempt last (none yet, one under way, or one killed with its controller)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - TAIL_BYTES))
            lines = [line for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return None
    code = re.match(re.escape(EXIT) + r"(-?\d+)", lines[-1]) if lines else None
    if code is None:
        return None
    said = ""
    for line in reversed(lines[:-1]):
        if line.startswith(ATTEMPT):
            break
        if not line.startswith("act sweep: "):
            said = line.strip()
            break
    return int(code.group(1)), said or lines[-1]


def exit_line(code: int) -> str:
    """The line that closes an attempt: its exit code, and the signal that ended it."""
    how = f" (killed by {signal.Signals(-code).name})" if code < 0 and -code in signal.valid_signals() else ""
    return f"{EXIT}{code}{how}"


def status_table(states: dict[str, CellState], plan: dict[str, str] | None = None) -> str:
    """One row per cell: its name, RTM last-10 (finished runs), its pack or why it runs alone
    (a sweep run with --pack) and state (last: a failure's line is long)."""
    packs = plan is not None
    rows = [("cell", "RTM last-10", *(["pack"] if packs else []), "state")] + [
        (name, "-" if s.rtm_last10 is None else f"{s.rtm_last10:.2f}", *([plan.get(name, "-")] if packs else []),
         s.text) for name, s in states.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([f"{row[0]:<{widths[0]}}", f"{row[1]:>{widths[1]}}",
                                 *(f"{cell:<{w}}" for cell, w in zip(row[2:-1], widths[2:])), row[-1]])
                      for row in rows)


def counts(states: dict[str, CellState]) -> str:
    """"2 finished, 1 running, 1 queued": the cells of each kind, in a fixed order."""
    kinds = ("finished", "running", "pending", "stopped", "queued", "cancelled", "failed", "diverged")
    found = [(kind, sum(s.kind == kind for s in states.values())) for kind in kinds]
    return ", ".join(f"{n} {kind}" for kind, n in found if n)
