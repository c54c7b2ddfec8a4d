"""Files written whole or not at all: through a temp file of their own beside them, then renamed
(`atomic_write`), so a reader never sees half a file and a failed write leaves the old one. The run
folder (act/run/folder.py), checkpoints, curves and the commands' outputs are written here.
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Callable

from act.errors import ActError

# A temp file of `atomic_write`: `.<name>.act-<8 hex>.tmp`, so that no file of a user's is taken for one.
TEMP = re.compile(r"\..+\.act-[0-9a-f]{8}\.tmp")


def describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


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


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def write_bytes(path: Path, data: bytes) -> None:
    def write(p: Path) -> None:
        with open(p, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)
