"""What a run writes for people and tools beside its own records: TensorBoard scalars each
epoch (`run.tensorboard`), and at its end the memory bank (`bank.npz`, read by `act issues`)
and its curves (`curves.png`, `run.plots`).

Only the main process writes them: under torch.distributed every rank runs the loop, but one
folder must get one copy.
"""
from __future__ import annotations

from pathlib import Path

import torch

from act.config import Config, flatten, to_dict
from act.errors import ActError
from act.run import plots
from act.run.folder import CURVES, TENSORBOARD, RunFolder
from act.run.titles import group_title


def is_main_process() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) \
        or torch.distributed.get_rank() == 0


class Outputs:
    """Opened before the first epoch, so that a missing extra stops the run before it trains."""

    def __init__(self, run_dir: Path, cfg: Config, plots: bool) -> None:
        self.folder = RunFolder(run_dir)
        self.main = is_main_process()
        self.plots = plots  # the Runtime's decision of run.plots (act/run/runtime.py)
        self.title = group_title(flatten(to_dict(cfg)))
        self.writer = open_writer(self.folder / TENSORBOARD) if cfg.run.tensorboard and self.main else None

    def epoch(self, record: dict) -> None:
        """One scalar per numeric metric, at step = epoch; flushed, so a killed run keeps them."""
        if self.writer is None:
            return
        for key, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "epoch":
                self.writer.add_scalar(key, value, record["epoch"])
        self.writer.flush()

    def finish(self, bank, history: list[dict], files: list[str] | None, classes: int) -> None:
        if not self.main:
            return
        self.folder.write_bank(bank, history, files, classes)
        if self.plots:
            plots.save_curves([history], self.title, self.folder / CURVES)
        if self.writer is not None:
            self.writer.close()


def open_writer(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ActError("run.tensorboard=true needs the tensorboard package: pip install 'act-noisy[tensorboard]'") from exc
    return SummaryWriter(log_dir=str(log_dir))
