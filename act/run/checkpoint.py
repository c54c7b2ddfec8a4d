"""Checkpoints: one file per run, verified before use, loaded without running code.

File layout: the line `ACT-CHECKPOINT 1`, the sha256 of the payload in hex on the next line,
then the payload: `torch.save` of a dict of tensors, numbers, strings, lists and dicts only.
The checksum catches truncated or altered files before anything is unpickled; the payload
is read with `torch.load(weights_only=True)`, whose unpickler builds no other objects, so a
checkpoint whose pickle would run code is refused. RNG states are stored as tensors and
lists for that reason. Each checkpoint carries the run's data fingerprint (`fingerprint`),
compared with the data a resumed run reads. `save_run` and `restore_run` put a run's state
(both nets, optimisers, scaler, memory bank, history, RNG) into a checkpoint and back.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from act.config import RESUME_OVERRIDABLE, Config, experiment
from act.datasets.base import Source
from act.errors import ActError
from act.run.files import describe, write_bytes
from act.schema import NONE, mismatch
from act.step import distributed

MAGIC = b"ACT-CHECKPOINT 1\n"
DIGEST_LINE = 64 + 1  # sha256 hex + newline
# What `save_run` writes and `restore_run` and `act issues` read (act/schema.py).
STATE = {
    "epoch": int, "fingerprint": dict, "config": (str, NONE), "threads": (int, NONE), "world_size": int,
    "rtm": dict, "ntm": dict, "rtm_opt": dict, "ntm_opt": dict, "scaler": (dict, NONE), "bank": {"count": torch.Tensor, "ema": torch.Tensor}, "history": [{"epoch": int}],
    "rng": {"torch": torch.Tensor, "python": list, "cuda": (list, NONE),
            "numpy": {"name": str, "keys": torch.Tensor, "pos": int, "has_gauss": int, "cached_gaussian": float}},
}

# Keys of checkpoints written by earlier versions: renamed (the optimisers were opt0/opt1), or
# added since (the config record and the thread count: absent, the resume cannot check them).
RENAMED = {"opt0": "rtm_opt", "opt1": "ntm_opt"}
ADDED = ("config", "threads")


def upgrade(state: dict) -> dict:
    """A checkpoint of an earlier version in the current layout (nothing else changes)."""
    for old, new in RENAMED.items():
        if old in state and new not in state:
            state[new] = state.pop(old)
    for key in ADDED:
        state.setdefault(key, None)
    return state


def save(path: Path, state: dict) -> None:
    """Write `state` atomically (temp file + fsync + rename), with its checksum."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode()
    write_bytes(path, MAGIC + digest + b"\n" + payload)


def load(path: Path) -> dict:
    """The verified state of checkpoint `path`, on the CPU; any fault is one ActError naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ActError(f"checkpoint {path} cannot be read ({describe(exc)})") from exc
    if not data.startswith(MAGIC):
        raise ActError(f"checkpoint {path} is not an act checkpoint of this version (no header); "
                       f"the run cannot be resumed from it")
    digest = data[len(MAGIC):len(MAGIC) + DIGEST_LINE - 1].decode("ascii", "replace")
    payload = memoryview(data)[len(MAGIC) + DIGEST_LINE:]
    if hashlib.sha256(payload).hexdigest() != digest:
        raise ActError(f"checkpoint {path} is corrupt (its checksum does not match: truncated or altered); "
                       f"the run cannot be resumed from it")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ActError(f"checkpoint {path} holds objects other than tensors and plain values; refused "
                       f"(loading it could run code)") from exc
    except Exception as exc:  # a well-formed checksum over a payload torch cannot read
        raise ActError(f"checkpoint {path} cannot be read ({type(exc).__name__}); "
                       f"the run cannot be resumed from it") from exc
    if not isinstance(state, dict) or "epoch" not in state:
        raise ActError(f"checkpoint {path} does not hold an act run's state")
    wrong = mismatch(upgrade(state), STATE)
    if wrong is None and len(state["history"]) != state["epoch"] + 1:
        wrong = f"'history' holds {len(state['history'])} epochs, 'epoch' says {state['epoch'] + 1}"
    if wrong:
        raise ActError(f"checkpoint {path} does not hold the state this act writes ({wrong}); "
                       f"the run cannot be resumed from it")
    return state


def rng_state() -> dict:
    """The global RNG states as tensors and lists (nothing a weights-only load refuses)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": [version, list(internal), gauss_next],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def fingerprint(source: Source, noisy: np.ndarray, moved: bool = True) -> dict:
    """What identifies a run's data: sizes, and hashes of the labels (noisy and true), of the
    pixels of array data and of the file list of file data. Hashing the pixels of image files
    would read the whole data set; their list is hashed instead, each path below the folder all
    of them share, so data moved elsewhere whole are the same data (`moved=False`: the absolute
    paths, as checkpoints written before hashed them)."""
    def sha(*parts) -> str:
        h = hashlib.sha256()
        for part in parts:
            h.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else os.fsencode(part))
        return h.hexdigest()

    out = {"train_size": len(source.train), "test_size": len(source.test),
           "labels": sha(source.train.labels, noisy, source.test.labels)}
    cut = shared_folder([*(source.train.files or []), *(source.test.files or [])]) if moved else 0
    out["data"] = sha(*(s.images if s.images is not None else "\n".join(f[cut:] for f in s.files) + "\n"
                        for s in (source.train, source.test)))
    return out


def shared_folder(files: list[str]) -> int:
    """The length of the folder path every file lies below (0 when none, or they mix kinds of path)."""
    try:
        base = os.path.commonpath([os.path.dirname(f) for f in files]) if files else ""
    except ValueError:
        return 0
    return len(base) + 1 if base and base != os.sep else 0


def save_run(run, epoch: int) -> None:
    """Checkpoint `run` (act/run/build.py's Run) after its completed epoch `epoch`."""
    ctx = run.ctx
    run.folder.write_checkpoint({
        "epoch": epoch,  # last completed epoch; the next starts at its first batch
        "fingerprint": run.fingerprint,
        "config": json.dumps(experiment(run.cfg), sort_keys=True),  # compared on resume (`check_experiment`)
        "threads": torch.get_num_threads(),  # in effect: it sets the order of float sums on the CPU
        "world_size": run.world.size,
        "rtm": distributed.unwrap(ctx.rtm).state_dict(), "ntm": distributed.unwrap(ctx.ntm).state_dict(),
        "rtm_opt": ctx.rtm_opt.state_dict(), "ntm_opt": ctx.ntm_opt.state_dict(),
        "scaler": ctx.scaler.state_dict() if ctx.scaler is not None else None,
        "bank": ctx.bank.state_dict(),
        "history": run.history,
        "rng": rng_state() if run.rng is None else run.rng,
    })


def check_experiment(state: dict, cfg: Config, path: Path) -> None:
    """A resume continues the experiment its checkpoint recorded: a key of the run's config.yaml
    that differs from the record (edited since, or a checkpoint of another run), other than
    those a resume may change, is refused, naming it. A key the record lacks (added to the config
    since the checkpoint was written) counts as its default; a key the config no longer has is
    not compared. A checkpoint written before the record existed is not checked."""
    if state["config"] is None:
        return
    try:
        then = json.loads(state["config"])
    except ValueError as exc:
        raise ActError(f"checkpoint {path} holds no readable config record; the run cannot be resumed from it") from exc
    if not isinstance(then, dict):
        raise ActError(f"checkpoint {path} holds a config record that is not a mapping; "
                       f"the run cannot be resumed from it")
    now, default = (json.loads(json.dumps(experiment(c), sort_keys=True)) for c in (cfg, Config()))  # tuples: lists
    then = {key: then.get(key, default[key]) for key in now}
    changed = sorted(key for key in now if then[key] != now[key])
    if changed:
        key, more = changed[0], f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        raise ActError(f"{path} and the config.yaml beside it disagree ({key}: {then.get(key, '(unset)')!r} in the "
                       f"checkpoint, {now.get(key, '(unset)')!r} in config.yaml{more}): the config was edited or the "
                       f"checkpoint comes from another run; a resume continues the same run, so put config.yaml back "
                       f"(a resume may change only {', '.join(RESUME_OVERRIDABLE)})")


def check_threads(run, state: dict, path: Path) -> None:
    """The CPU thread count in effect sets the order of float sums: another one would not continue
    a CPU run bit for bit (a GPU run's sums do not depend on it). Not recorded: not checked."""
    now = torch.get_num_threads()
    if run.device.type == "cpu" and state["threads"] is not None and state["threads"] != now:
        where = f"run.threads={run.cfg.run.threads}" if run.cfg.run.threads else "run.threads=0, torch's default here"
        raise ActError(f"run {run.dir} trained with {state['threads']} CPU threads and this process has {now} "
                       f"({where}); resume with run.threads={state['threads']}")


def restore_run(run, state: dict, path: Path) -> tuple[list[dict], int]:
    """Load a verified checkpoint's state (read from `path`) into the run's nets, optimisers, scaler
    and bank and set the RNG; returns what the Run continues from: (its epoch records, the next
    epoch). A state that does not fit is one line."""
    ctx = run.ctx
    if state.get("fingerprint") not in (run.fingerprint, fingerprint(run.pipeline.source, run.pipeline.noisy, False)):
        raise ActError(f"the data of run {run.dir} changed since {path} was written (data set size, labels, "
                       f"pixels or file list differ); resume with the data the run began with")
    check_threads(run, state, path)
    distributed.check_world(run.world, state, path)
    try:
        distributed.unwrap(ctx.rtm).load_state_dict(state["rtm"])
        distributed.unwrap(ctx.ntm).load_state_dict(state["ntm"])
        ctx.rtm_opt.load_state_dict(state["rtm_opt"])
        ctx.ntm_opt.load_state_dict(state["ntm_opt"])
        if ctx.scaler is not None and state["scaler"] is not None:
            ctx.scaler.load_state_dict(state["scaler"])
        ctx.bank.load_state_dict(state["bank"])
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ActError(f"checkpoint {path} does not fit model.name={run.cfg.model.name} of this run ({first}); "
                       f"was it copied from another run?") from exc
    try:
        set_rng_state(state["rng"])
    except (TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise ActError(f"checkpoint {path} holds random-number states that cannot be restored "
                       f"({type(exc).__name__}); the run cannot be resumed from it") from exc
    return list(state["history"]), state["epoch"] + 1
