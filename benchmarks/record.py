"""One record format for every benchmark's results.

    {"kind": ..., "date": ISO-8601 UTC, "commit": short hash or null, "torch": version,
     "device": where it ran, "command": the command line, "config": the settings measured,
     "figures": what was measured}

`write_record` writes it (or appends it as one JSON line to a .jsonl file), so that a figure
can always be traced to the code, the machine and the command that produced it.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from act.run.files import atomic_write


def commit() -> str | None:
    """The short hash of the checked-out commit, None outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> str:
    """The CPU, and the GPU where there is one, e.g. "2-core x86_64 CPU, NVIDIA H100"."""
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{os.cpu_count()}-core {platform.machine()} CPU{gpu}"


def command_line(module: str, argv: list[str] | None = None) -> str:
    """`python -m <module> <arguments>`: argv when given (a call from code), else sys.argv's."""
    return " ".join(["python -m " + module, *(sys.argv[1:] if argv is None else argv)])


def make_record(kind: str, figures: Any, command: str, config: Any = None, device: str | None = None) -> dict:
    return {"kind": kind, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": commit(),
            "torch": torch.__version__, "device": device or machine(), "command": command, "config": config,
            "figures": figures}


def write_record(path: str | Path, kind: str, figures: Any, command: str, config: Any = None,
                 device: str | None = None) -> dict:
    """Write the record of `figures` to `path` (a .jsonl file gets it appended as one line; any
    other file is replaced whole, atomically: a reader or a kill never leaves half a record)."""
    path = Path(path)
    record = make_record(kind, figures, command, config, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        with path.open("a") as f:
            f.write(json.dumps(record) + "\n")
    else:
        text = json.dumps(record, indent=2) + "\n"
        atomic_write(path, lambda tmp: tmp.write_text(text))
    return record
