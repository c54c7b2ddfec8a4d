"""The run folder: `RunFolder` spells its file names once, reads each typed and writes each
atomically (act/run/files.py); creating it, and the lock held while a process writes it. What a run records about
its epochs: act/run/records.py; its checkpoint's format: act/run/checkpoint.py (docs/runs.md).

Principles: nothing act did not write is ever deleted or overwritten; a reader never sees half a
file (temp file + rename); one process at a time writes a run folder (`fcntl.flock` on `.lock`,
released by the kernel when the process dies, so a killed run never blocks its own resume).
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import math
import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from act.config import Config, dump_yaml, read_run_config
from act.errors import ActError
from act.run.files import atomic_write, describe, is_temp, write_text
from act.run.titles import noise_tag
from act.schema import NONE, array_mismatch, mismatch

# The names of a run folder's files, spelled here alone.
CONFIG = "config.yaml"  # the resolved config; marks a folder as a run's
LABELS = "labels.npz"  # noisy and true training labels (`noisy`, `true`)
NOISE = "noise.json"  # the actual noise rate beside the noise keys
METRICS = "metrics.jsonl"  # one JSON record per epoch
CHECKPOINT = "checkpoint.pt"  # the last completed epoch
SUMMARY = "summary.json"  # written at the run's end
BANK = "bank.npz"  # the memory bank at the run's end, read by `act issues`
CURVES = "curves.png"  # run.plots
TENSORBOARD = "tensorboard"  # a folder: run.tensorboard
WANDB = "wandb"  # a folder, wandb's own (run.wandb): an offline run waits there for `wandb sync`
WANDB_ID = "wandb.id"  # the run's W&B id, so that a resume continues the same W&B run
LOCK = ".lock"  # held (flock) by the process writing the folder
CONSOLE = "console.log"  # the run's console output, kept by `act sweep` (act/sweep/), which opens it first
DIVERGED = "diverged.json"  # the epoch whose loss turned NaN or infinite, and the loop's line; a resume removes it
PROVENANCE = "provenance.json"  # where each start and resume came from (act/run/provenance.py)
# The files a run folder holds; `act issues --out` and `act report --out` never replace one.
RUN_FILES = (CONFIG, LABELS, NOISE, METRICS, CHECKPOINT, SUMMARY, BANK, CURVES, LOCK, CONSOLE, DIVERGED, PROVENANCE,
             WANDB_ID)
# Files act writes into a run folder before it holds a run (config.yaml marks a run).
TOOL_LEFTOVERS = (LOCK, CONSOLE)
RUN_MARKER = CONFIG
# The arrays of bank.npz and labels.npz (act/schema.py): name -> (dimensions, numpy kinds).
BANK_ARRAYS = {"ema": (2, "f"), "selected": (1, "iu"), "robust_epochs": (0, "iu"), "files": (1, "U"),
               "classes": (0, "iu")}
LABEL_ARRAYS = {"noisy": (1, "iu"), "true": (1, "iu")}
# An entry of provenance.json (act/schema.py); null where a run could not tell (no git checkout, no CUDA).
PROVENANCE_ENTRY = {"kind": str, "time": str, "act": str, "commit": (str, NONE), "dirty": (bool, NONE),
                    "python": str, "torch": str, "cuda": (str, NONE), "cudnn": (str, NONE), "driver": (str, NONE),
                    "device": str, "host": str, "argv": [str]}
PROVENANCE_KINDS = ("start", "resume")


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
    noise = noise_tag(dataclasses.asdict(cfg.data.noise))
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
    """Strict JSON, as metrics.jsonl and summary.json hold it: a NaN or infinity becomes null."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)


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
    """The folder's lock for this process; the temp files a writer killed mid-write left are its
    own to remove now (`atomic_write` names each afresh, so none is ever written over)."""
    key = folder.resolve()
    if key not in HELD:
        HELD[key] = RunLock(folder)
        for name in os.listdir(folder):
            if is_temp(name):
                (folder / name).unlink()


def release(folder: Path) -> None:
    lock = HELD.pop(Path(folder).resolve(), None)
    if lock is not None:
        lock.release()


class RunFileError(ActError):
    """A file of a run folder that is not what a run writes. `why` begins with the file's name
    (how `act report` lists the run); the message puts the folder before it."""

    def __init__(self, folder: Path, why: str):
        super().__init__(f"{folder}{os.sep}{why}")
        self.why = why


@dataclass
class Bank:
    """The memory bank a run left for `act issues` (bank.npz, or its checkpoint's: act/commands/issues.py)."""

    ema: np.ndarray  # (N, outputs) float
    selected: np.ndarray  # (N,) robust-phase selections
    robust_epochs: int
    files: list[str] | None
    classes: int | None  # the data set's classes, the EMA's first columns (None: not recorded, a checkpoint)


def bank_out_of_range(arrays: dict[str, np.ndarray]) -> str | None:
    """What in bank.npz's arrays is out of the range a run writes, where their types (BANK_ARRAYS) do
    not bound it: the classes are the EMA's first columns, counts are never negative."""
    columns = arrays["ema"].shape[1]
    if "classes" in arrays and not 1 <= arrays["classes"] <= columns:
        return f"'classes' is {int(arrays['classes'])}, not from 1 to the EMA's {columns} columns"
    if arrays["robust_epochs"] < 0:
        return f"'robust_epochs' is {int(arrays['robust_epochs'])}, below 0"
    if arrays["selected"].size and arrays["selected"].min() < 0:
        return f"'selected' holds {int(arrays['selected'].min())}, below 0"
    return None


def is_config_record(record: str | None) -> bool:
    """A checkpoint's config record as `save_run` writes it: the JSON of a mapping (None: a
    checkpoint older than the record)."""
    if record is None:
        return True
    try:
        return isinstance(json.loads(record), dict)
    except ValueError:
        return False


def run_now(take: Callable[[], None]) -> None:
    """How `RunFolder.held` takes the lock in a process of its own: now."""
    take()


def taken(take: Callable[[], None]) -> None:
    """How `RunFolder.held` takes a lock `RunFolder.create` already took: not again."""


class RunFolder:
    """One run folder. `folder / CHECKPOINT` is a file's path; `config`, `labels`, `metrics`,
    `summary`, `bank` and `checkpoint` read the files typed and refuse one that is not what a run
    writes (RunFileError); the `write_*` methods write them atomically; `create` makes a new folder,
    locked, and `held` holds the lock for the run's life and releases it once."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def create(cls, cfg: Config, noisy: np.ndarray, true: np.ndarray, noise: dict) -> RunFolder:
        """A new folder under run.out_dir, locked by this process until `held` ends, holding the
        run's config, labels and noise report."""
        folder = cls(new_run_dir(cfg))
        folder.write_config(cfg)
        folder.write_labels(noisy, true, noise)
        return folder

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """The folder of an existing run (one holding config.yaml)."""
        folder = cls(path)
        if not (folder / CONFIG).is_file():
            raise ActError(f"{folder.path} is not a run folder (no {CONFIG}); give the folder a run was written to")
        return folder

    @contextmanager
    def held(self, take: Callable[[Callable[[], None]], None] = run_now) -> Iterator[RunFolder]:
        """The lock for the run's life: taken here (`create` took it already: a new folder is never
        unlocked), released once when the run ends. `take` runs the taking: a torchrun run has
        rank 0 alone take it (act/step/distributed.py `on_main`), its refusal raised on every rank."""
        try:
            take(lambda: acquire(self.path))
            yield self
        finally:
            release(self.path)

    def regular(self, name: str) -> bool:
        """Whether the file is there; one that is there but is not a regular file (reading a FIFO
        or a device would block or never end) is refused."""
        try:
            mode = (self / name).stat().st_mode
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise RunFileError(self.path, f"{name} cannot be read ({describe(exc)})") from exc
        if not stat.S_ISREG(mode):
            raise RunFileError(self.path, f"{name} is not a regular file")
        return True

    def config(self) -> Config:
        """config.yaml, read as strictly and typed as any config (act/config.py `read_run_config`):
        a key it lacks has the typed config's default."""
        path = self / CONFIG
        if not self.regular(CONFIG):
            raise RunFileError(self.path, f"{CONFIG} is missing")
        try:
            return read_run_config(path)
        except ActError as exc:
            text = str(exc).replace(f"config file {path}", CONFIG)
            raise RunFileError(self.path, text if text.startswith(CONFIG) else f"{CONFIG}: {text}") from exc

    def npz(self, name: str, schema: dict, optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """The arrays of an npz file of the folder, as `schema` (act/schema.py) says a run writes them."""
        self.regular(name)
        try:
            with np.load(self / name) as z:
                wrong = array_mismatch(z, schema, optional)
                arrays = {key: z[key] for key in z.files}
        except (OSError, ValueError, KeyError, AttributeError) as exc:  # AttributeError: a .npy, not an archive
            raise RunFileError(self.path, f"{name} cannot be read ({type(exc).__name__})") from exc
        if wrong:
            raise RunFileError(self.path, f"{name} does not hold what a run writes ({wrong})")
        return arrays

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """The noisy and the true training labels."""
        arrays = self.npz(LABELS, LABEL_ARRAYS)
        return arrays["noisy"], arrays["true"]

    def bank(self) -> Bank | None:
        """bank.npz, or None where the run has not written it (stopped before its end)."""
        if not self.regular(BANK):
            return None
        z = self.npz(BANK, BANK_ARRAYS, optional=("files", "classes"))
        wrong = bank_out_of_range(z)
        if wrong:
            raise RunFileError(self.path, f"{BANK} does not hold what a run writes ({wrong})")
        files = [str(f) for f in z["files"]] if "files" in z else None
        # A bank.npz without `classes` predates model.num_outputs: one EMA column per class.
        classes = int(z["classes"]) if "classes" in z else z["ema"].shape[1]
        return Bank(ema=z["ema"], selected=z["selected"], robust_epochs=int(z["robust_epochs"]), files=files,
                    classes=classes)

    def checkpoint(self) -> dict | None:
        """The verified state of checkpoint.pt on the CPU (act/run/checkpoint.py), or None before the
        first epoch ended."""
        from act.run import checkpoint  # torch, only where a checkpoint is read

        path = self / CHECKPOINT
        if not path.exists():
            return None
        state = checkpoint.load(path)
        if not is_config_record(state["config"]):
            raise RunFileError(self.path, f"{CHECKPOINT} holds a config record that is not the JSON of a mapping; "
                                          f"it is not a checkpoint act wrote")
        return state

    def metrics(self) -> list[dict]:
        """The records of metrics.jsonl, one per epoch ([] before the first)."""
        if not self.regular(METRICS):
            return []
        try:
            lines = (self / METRICS).read_text().splitlines()
        except (OSError, ValueError) as exc:
            raise RunFileError(self.path, f"{METRICS} cannot be read ({exc})") from exc
        records = []
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise RunFileError(self.path, f"{METRICS} line {number} is not JSON (truncated?)") from exc
            if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
                raise RunFileError(self.path, f"{METRICS} line {number} is not an epoch's record")
            records.append(record)
        return records

    def json(self, name: str) -> object:
        """The JSON file `name` of the folder; one RunFileError where it cannot be read as JSON."""
        try:
            return json.loads((self / name).read_text())
        except (OSError, ValueError) as exc:
            raise RunFileError(self.path, f"{name} cannot be read as JSON ({exc})") from exc

    def summary(self) -> dict | None:
        """summary.json, or None before the run ended. Its accuracies may be null or not finite
        (a diverged run); any other figure not finite is not what a run writes."""
        if not self.regular(SUMMARY):
            return None
        summary = self.json(SUMMARY)
        if not isinstance(summary, dict):
            raise RunFileError(self.path, f"{SUMMARY} does not hold a mapping")
        for part, key in (("rtm", "last10_mean"), ("ntm", "last10_mean"), ("selection", "precision")):
            if not isinstance(summary.get(part), dict) or key not in summary[part]:
                raise RunFileError(self.path, f"{SUMMARY} lacks '{part}.{key}'")
        figures = {"rtm.last10_mean": summary["rtm"]["last10_mean"],
                   "epoch_seconds_median": summary.get("epoch_seconds_median"),
                   **{f"selection.{k}": summary["selection"].get(k) for k in ("precision", "recall", "f1")}}
        if not all(v is None or isinstance(v, (int, float)) for v in figures.values()):
            raise RunFileError(self.path, f"{SUMMARY} holds a figure that is not a number")
        bad = [k for k, v in figures.items() if k != "rtm.last10_mean" and v is not None and not math.isfinite(v)]
        if bad:
            raise RunFileError(self.path, f"{SUMMARY} holds a figure that is not finite ({bad[0]})")
        return summary

    def diverged(self) -> dict | None:
        """diverged.json ({"epoch": int, "why": str}), or None for a run that has not diverged."""
        if not self.regular(DIVERGED):
            return None
        record = self.json(DIVERGED)
        if not (isinstance(record, dict) and isinstance(record.get("epoch"), int) and isinstance(record.get("why"), str)):
            raise RunFileError(self.path, f"{DIVERGED} does not hold an epoch and a reason")
        return record

    def provenance(self) -> list[dict]:
        """provenance.json: one entry per start and resume, oldest first ([] for a run older than it)."""
        if not self.regular(PROVENANCE):
            return []
        entries = self.json(PROVENANCE)
        wrong = mismatch(entries, [PROVENANCE_ENTRY])
        if wrong is None:
            wrong = next((f"'kind' is {e['kind']!r}, not start or resume" for e in entries
                          if e["kind"] not in PROVENANCE_KINDS), None)
        if wrong:
            raise RunFileError(self.path, f"{PROVENANCE} does not hold what a run writes ({wrong})")
        return entries

    def add_provenance(self, entry: dict) -> str | None:
        """provenance.json with `entry` appended. One that cannot be read is replaced by a list of
        `entry` alone (where a run came from never stops it); returns why, or None."""
        try:
            entries, why = self.provenance(), None
        except RunFileError as exc:
            entries, why = [], exc.why
        write_text(self / PROVENANCE, to_json(entries + [entry], indent=2))
        return why

    def check_labels(self, noisy: np.ndarray, true: np.ndarray) -> None:
        """The labels read now against the run's labels.npz: one line where they differ."""
        saved_noisy, saved_true = self.labels()
        if len(saved_true) != len(true):
            raise ActError(f"the data of run {self.path} changed: {self / LABELS} holds {len(saved_true)} training "
                           f"labels, the data read now has {len(true)}; resume with the data the run began with")
        if not (np.array_equal(saved_true, true) and np.array_equal(saved_noisy, noisy)):
            raise ActError(f"the data of run {self.path} changed: its labels differ from {self / LABELS}; "
                           f"resume with the data the run began with")

    def write_checkpoint(self, state: dict) -> None:
        """checkpoint.pt (act/run/checkpoint.py `save`: its format), which `checkpoint()` reads back."""
        from act.run import checkpoint  # torch, only where a checkpoint is written

        checkpoint.save(self / CHECKPOINT, state)

    def write_bank(self, bank, history: list[dict], files: list[str] | None, classes: int) -> None:
        """bank.npz at the run's end: the bank (a method.Bank on any device), the selections of the
        run's robust phase and the data set's number of classes (the EMA's first columns)."""
        warmup = sum(r["phase"] == "warmup" for r in history)
        robust = sum(r["phase"] == "robust" for r in history)
        count = bank.count.cpu().numpy()
        # A sample that sat out a 1-sample warm-up batch (train.train_batches) has one count less.
        selected = np.clip(count - warmup, 0, None)
        extra = {} if files is None else {"files": np.asarray(files, dtype=str)}

        def write(p: Path) -> None:
            with open(p, "wb") as f:
                np.savez_compressed(f, count=count, ema=bank.ema.float().cpu().numpy(), selected=selected,
                                    warmup_epochs=warmup, robust_epochs=robust, classes=classes, **extra)

        atomic_write(self / BANK, write)

    def write_config(self, cfg: Config) -> None:
        write_text(self / CONFIG, dump_yaml(cfg))

    def write_labels(self, noisy: np.ndarray, true: np.ndarray, noise: dict) -> None:
        def save(p: Path) -> None:
            with open(p, "wb") as f:
                np.savez(f, noisy=noisy, true=true)

        atomic_write(self / LABELS, save)
        write_text(self / NOISE, json.dumps(noise, indent=2))

    def write_metrics(self, history: list[dict]) -> None:
        write_text(self / METRICS, "".join(to_json(r) + "\n" for r in history))

    def repair_metrics(self, history: list[dict]) -> None:
        """metrics.jsonl rewritten from `history` (a checkpoint's) where it does not read back as
        those records: cut short by a crash, or edited."""
        try:
            same = self.metrics() == json.loads(f"[{','.join(to_json(r) for r in history)}]")
        except RunFileError:
            same = False
        if not same:
            self.write_metrics(history)

    def write_summary(self, summary: dict) -> None:
        write_text(self / SUMMARY, to_json(summary, indent=2))

    def write_diverged(self, epoch: int, why: str) -> None:
        write_text(self / DIVERGED, to_json({"epoch": epoch, "why": why}, indent=2))

    def clear_diverged(self) -> None:
        """A resume tries again: the run is no longer diverged unless it diverges anew."""
        if self.regular(DIVERGED):
            (self / DIVERGED).unlink()
