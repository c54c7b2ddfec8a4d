"""Where a run came from: one entry per start and per resume, kept in the run folder's
provenance.json (act/run/folder.py `RunFolder.add_provenance` writes it, `RunFolder.provenance`
reads it back, checked against its `PROVENANCE_ENTRY`).

An entry holds act's version, the git commit and whether the tree was dirty (only where act is
imported from a git checkout), Python and torch, CUDA, cuDNN and the driver (only where the run
uses CUDA; null otherwise), the device's name, the host, the full command line, the start time
(UTC, ISO 8601) and `kind`: start or resume. Gathering it never fails a run: what cannot be read
(no git, no nvidia-smi, a command that hangs) is recorded as null.
"""
from __future__ import annotations

import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

import act

COMMAND_TIMEOUT_S = 5  # a git or nvidia-smi that hangs (a network file system) delays the start by this, no more


def entry(kind: str, device: torch.device) -> dict:
    """This process's entry for a run it starts (`kind` "start") or resumes ("resume") on `device`."""
    commit, dirty = git_state(Path(act.__file__).resolve().parent.parent)
    cuda = device.type == "cuda"
    return {"kind": kind, "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "act": act.__version__, "commit": commit, "dirty": dirty,
            "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda if cuda else None,
            "cudnn": str(torch.backends.cudnn.version()) if cuda and torch.backends.cudnn.is_available() else None,
            "driver": driver_version() if cuda else None,
            "device": torch.cuda.get_device_name(device) if cuda else cpu_name(),
            "host": socket.gethostname(), "argv": list(sys.argv)}


def command(args: list[str], cwd: Path | None = None) -> str | None:
    """The output of a command, stripped; None where it is missing, fails or hangs."""
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout act is imported from; (None, None) for an installed act.
    Dirty: a tracked file differs from the commit (untracked files do not count, as for
    `git describe --dirty`)."""
    if not (root / ".git").exists():  # a folder or, in a worktree, a file
        return None, None
    commit = command(["git", "rev-parse", "HEAD"], root)
    if commit is None:
        return None, None
    changes = command(["git", "status", "--porcelain", "--untracked-files=no"], root)
    return commit, None if changes is None else changes != ""


def driver_version() -> str | None:
    """The NVIDIA driver's version, as nvidia-smi tells it (its first GPU's)."""
    found = command(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    return found.splitlines()[0].strip() if found else None


def cpu_name() -> str:
    """The CPU's model name where Linux tells it, else the machine's architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.machine() or "cpu"
