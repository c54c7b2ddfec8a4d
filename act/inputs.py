"""The files a user names that a run reads besides its data: checked where they are read, and before
anything is built (act/run/preflight.py) without importing torch. A run's data sets are found by
their readers' own checks (act/datasets/registry.py `DatasetSpec.locate`)."""
from __future__ import annotations

from pathlib import Path

from act.errors import ActError

NO_WEIGHTS = "none"  # model.pretrained=none: no weights file, on purpose (act/run/preflight.py check_weights)


def check_weights_file(path: str) -> Path:
    """The local weights file `path` (model.pretrained); one line where it is not a file or cannot be read."""
    file = Path(path)
    if not file.is_file():
        raise ActError(f"model.pretrained={path}: no such file (weights are never downloaded; give a local file)")
    try:
        with open(file, "rb"):
            pass
    except OSError as exc:
        raise ActError(f"model.pretrained={path} cannot be read: {exc.strerror or exc}") from exc
    return file
