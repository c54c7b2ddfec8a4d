"""The tiny run of the step and capture tests: 400 train and 200 test 12 x 12 RGB images of 10
classes in an .npz the tests write (no download, no extra package, also on a bare GPU machine),
tinycnn, one warm-up epoch and two robust ones. No pytest here: tests/cuda_checks.py runs
without it on a GPU machine."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from act.config import load_config
from act.run.build import prepare
from act.run.runtime import decide

# 400 images in batches of 64: six full batches (the static path) and a last one of 16 (eager).
TINY = ["data.name=arrays", "model.name=tinycnn", "optim.warmup_epochs=1", "optim.epochs=3", "run.device=cpu",
        "optim.batch_size=64"]
TIMING = ("epoch_seconds", "train_seconds", "images_per_s")


def tiny_data(tmp_path: Path) -> str:
    """400 train and 200 test 12 x 12 RGB images of 10 classes (an .npz: no download, no extra
    package, also on a bare GPU machine); each class a colour, so the nets learn something."""
    path = tmp_path / "tiny.npz"
    if not path.exists():
        rs = np.random.RandomState(0)
        y, y_test = np.arange(400) % 10, np.arange(200) % 10
        colours = rs.randint(0, 256, (10, 1, 1, 3))
        x, x_test = (np.clip(colours[c] + rs.randint(-60, 60, (len(c), 12, 12, 3)), 0, 255).astype(np.uint8)
                     for c in (y, y_test))
        np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test)
    return str(path)


def tiny_config(tmp_path: Path, *overrides: str):
    return load_config(None, [*TINY, f"data.root={tiny_data(tmp_path)}", *overrides])


def tiny_run(tmp_path: Path, cuda_paths: bool, *overrides: str):
    cfg = tiny_config(tmp_path, *overrides)
    return prepare(cfg, decide(cfg, cuda_paths), run_dir=tmp_path)


def without_timing(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING}
