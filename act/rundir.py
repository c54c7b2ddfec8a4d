"""The run folder: creating it, writing into it atomically, its inputs (config.yaml, labels.npz,
noise.json), and the lock held while a process writes it. What a run writes about its epochs:
act/results.py; its checkpoint: act/checkpoint.py.

Principles: nothing act did not write is ever deleted or overwritten; a reader never sees half a
file (temp file + rename); one process at a time writes a run folder (`fcntl.flock` on `.lock`,
released by the kernel when the process dies, so a killed run never blocks its own resume).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np

from act.config import Config, dump_yaml
from act.errors import ActError

LOCK = ".lock"
# The files a run folder holds; `act issues --out` and `act report --out` never replace one.
RUN_FILES = ("config.yaml", "labels.npz", "noise.json", "metrics.jsonl", "checkpoint.pt", "summary.json", "bank.npz",
             "curves.png", LOCK)
# A temp file of `atomic_write`: `.<name>.act-<8 hex>.tmp`, so that no file of a user's is taken for one.
TEMP = re.compile(r"\..+\.act-[0-9a-f]{8}\.tmp")
# Files act writes into a run folder before it holds a run (config.yaml marks a run).
TOOL_LEFTOVERS = (LOCK,)
RUN_MARKER = "config.yaml"


def describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def new_run_dir(cfg: Config) -> Path:
    """A fresh folder under run.out_dir, locked by this process. A named folder is reused only
    when it holds nothing but act's own leftovers of a start that wrote no config."""
    out = Path(cfg.run.out_dir)
    if out.exists() and not out.is_dir():
        raise ActError(f"run.out_dir={out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ActError(f"run.out_dir={out} cannot hold run folders ({describe(exc)})") from exc
    if cfg.run.name:
        return claim_named(out / cfg.run.name)
    n = cfg.data.noise
    noise = "clean" if n.type == "none" else f"{n.type[:4]}{round(n.closeset_ratio * 100)}"
    stem = f"{cfg.data.name}-{noise}-{cfg.method.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    for k in range(1000):
        path = out / (stem if k == 0 else f"{stem}-{k}")
        try:
            path.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        except OSError as exc:
            raise ActError(f"run.out_dir={out} cannot hold run folders ({describe(exc)})") from exc
        acquire(path)
        return path
    raise ActError(f"could not create a new run folder under {out}")


def claim_named(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise ActError(f"run folder {path} exists and is not a folder; choose another run.name")
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise ActError(f"run folder {path} cannot be created ({describe(exc)})") from exc
    check_unused(path)  # before the lock file: never write into a folder act does not own
    acquire(path)
    check_unused(path)  # again under the lock: another process may have started a run here
    for name in os.listdir(path):
        if is_temp(name):
            (path / name).unlink()
    return path


def check_unused(path: Path) -> None:
    names = os.listdir(path)
    if RUN_MARKER in names:
        raise ActError(f"run folder {path} already holds a run; continue it with --resume {path} "
                       f"or choose another run.name")
    foreign = sorted(n for n in names if n not in TOOL_LEFTOVERS and not is_temp(n))
    if foreign:
        raise ActError(f"run folder {path} holds files act did not write ({', '.join(foreign[:3])}); "
                       f"choose another run.name")


def is_temp(name: str) -> bool:
    """A temp file of `atomic_write`, left by a process killed mid-write."""
    return TEMP.fullmatch(name) is not None


def new_temp(path: Path) -> Path:
    """A fresh, empty temp file beside `path`, created by this call (O_EXCL: never an existing
    file, never through a link planted under its name)."""
    while True:
        tmp = path.with_name(f".{path.name}.act-{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666))
            return tmp
        except FileExistsError:
            continue


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temp file of its own in the same folder, then rename: readers never see
    half a file, and a link at `path` is replaced, never written through. A failed write (disk
    full, read-only folder) leaves the old file and no temp file behind."""
    try:
        tmp = new_temp(path)
    except OSError as exc:
        raise ActError(f"cannot write {path} ({describe(exc)}); the previous version, if any, is kept") from exc
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ActError(f"cannot write {path} ({describe(exc)}); the previous version, if any, is kept") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_replaceable(path: Path, what: str, act_wrote: bool, force: bool) -> None:
    """Before an output a user named replaces what is at `path`: never a folder or a run's own
    file, and a file act did not write (`act_wrote`) only when asked (`force`)."""
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_dir() and not path.is_symlink():
        raise ActError(f"{what} {path} is a folder; name a file")
    if path.name in RUN_FILES and (path.parent / RUN_MARKER).exists():
        raise ActError(f"{what} {path} is a file of run {path.parent}; act never replaces a run's own files: "
                       f"choose another path")
    if not (act_wrote or force):
        raise ActError(f"{what} {path} exists and act did not write it; add --force to replace it, or choose "
                       f"another path")


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def write_bytes(path: Path, data: bytes) -> None:
    def write(p: Path) -> None:
        with open(p, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def save_labels(path: Path, noisy: np.ndarray, true: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.savez(f, noisy=noisy, true=true)


def write_inputs(cfg: Config, noisy: np.ndarray, true: np.ndarray, report: dict) -> Path:
    """A new run folder (locked) with the run's config, labels and noise report."""
    run_dir = new_run_dir(cfg)
    write_text(run_dir / "config.yaml", dump_yaml(cfg))
    write_labels(run_dir, noisy, true, report)
    return run_dir


def write_labels(run_dir: Path, noisy: np.ndarray, true: np.ndarray, report: dict) -> None:
    atomic_write(run_dir / "labels.npz", lambda p: save_labels(p, noisy, true))
    write_text(run_dir / "noise.json", json.dumps(report, indent=2))


def check_labels(run_dir: Path, noisy: np.ndarray, true: np.ndarray) -> None:
    """The labels read now against the run's labels.npz: one line where they differ."""
    path = run_dir / "labels.npz"
    try:
        with np.load(path) as saved:
            saved_noisy, saved_true = saved["noisy"], saved["true"]
    except (OSError, ValueError, KeyError) as exc:
        raise ActError(f"{path} cannot be read ({type(exc).__name__}); the run's labels cannot be checked") from exc
    if len(saved_true) != len(true):
        raise ActError(f"the data of run {run_dir} changed: {path} holds {len(saved_true)} training labels, the data "
                       f"read now has {len(true)}; resume with the data the run began with")
    if not (np.array_equal(saved_true, true) and np.array_equal(saved_noisy, noisy)):
        raise ActError(f"the data of run {run_dir} changed: its labels differ from {path}; "
                       f"resume with the data the run began with")


class RunLock:
    """An exclusive `flock` on the run folder's `.lock`, holding the owner's PID for the message."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK
        try:
            self.file = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666), "r+")
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ActError(f"{self.path} is a link; act never writes through one: remove it") from exc
            raise ActError(f"run folder {folder} cannot be written ({describe(exc)})") from exc
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            owner = self.file.read().strip() or "unknown"
            self.file.close()
            raise ActError(f"run folder {folder} is in use by process {owner}; wait for it to end") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"{os.getpid()}\n")
        self.file.flush()

    def release(self) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


# Locks this process holds, by folder: a process may enter its own run folder again (a retry
# in the same interpreter) but no other process may.
HELD: dict[Path, RunLock] = {}


def forget_held() -> None:
    """In a forked child (a DataLoader worker): close its copies of the lock files. A flock belongs
    to the open file, which a fork shares, so a worker outliving a killed run would hold the run's
    lock until it noticed (seconds); the parent's own copy keeps the lock. Python opens files
    close-on-exec already, so only a fork without exec inherits them."""
    for lock in HELD.values():
        lock.file.close()
    HELD.clear()


os.register_at_fork(after_in_child=forget_held)


def acquire(folder: Path) -> None:
    key = folder.resolve()
    if key not in HELD:
        HELD[key] = RunLock(folder)


def release(folder: Path) -> None:
    lock = HELD.pop(Path(folder).resolve(), None)
    if lock is not None:
        lock.release()
