"""What a run writes for people and tools beside its own records: each epoch's numbers to
TensorBoard (`run.tensorboard`) and Weights & Biases (`run.wandb`, act/run/wandb_log.py), under
the tags of act/run/tags.py, and at its end the memory bank (`bank.npz`, read by `act issues`)
and its curves (`curves.png`, `run.plots`).

Only the main process writes them: under torch.distributed every rank runs the loop, but one
folder must get one copy. Whether the packages are installed is checked before the run folder
is made (act/run/runtime.py).
"""
from __future__ import annotations

from pathlib import Path

import torch

from act.config import Config, flatten, to_dict
from act.run import plots
from act.run.folder import CURVES, TENSORBOARD, RunFolder
from act.run.tags import final_scalars, scalars, settings
from act.run.titles import group_title


def is_main_process() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) \
        or torch.distributed.get_rank() == 0


class Outputs:
    """Opened before the first epoch (a resumed run's `history` is what it has done)."""

    def __init__(self, run_dir: Path, cfg: Config, plots: bool, history: list[dict]) -> None:
        self.folder = RunFolder(run_dir)
        self.main = is_main_process()
        self.plots = plots  # the Runtime's decision of run.plots (act/run/runtime.py)
        self.title = group_title(flatten(to_dict(cfg)))
        self.logs = open_logs(self.folder, cfg, self.title, history) if self.main else []

    def epoch(self, record: dict) -> None:
        for log in self.logs:
            log.epoch(record)

    def finish(self, bank, history: list[dict], files: list[str] | None, classes: int, summary: dict) -> None:
        if not self.main:
            return
        self.folder.write_bank(bank, history, files, classes)
        if self.plots:
            plots.save_curves([history], self.title, self.folder / CURVES)
        for log in self.logs:
            log.finish(final_scalars(summary), history[-1]["epoch"] if history else 0)


def open_logs(folder: RunFolder, cfg: Config, title: str, history: list[dict]) -> list:
    logs: list = [Board(folder / TENSORBOARD, settings(cfg), history)] if cfg.run.tensorboard else []
    if cfg.run.wandb != "off":
        from act.run.wandb_log import WandbLog

        logs.append(WandbLog(folder, cfg, title))
    return logs


class Board:
    """TensorBoard's event files of one run: a scalar per tag and epoch, flushed each epoch (a
    killed run keeps them), and the run's settings for the HParams view, one row per run. Only
    the settings of each run are written, not an experiment: TensorBoard then builds its table
    from every run under the folder it is shown (a sweep's runs), each setting a column."""

    def __init__(self, log_dir: Path, hparams: dict, history: list[dict]) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams as hparams_summaries

        # purge_step=0: TensorBoard drops what an earlier process of this run wrote, and the
        # history is written again below, so a resumed run shows each epoch once, under these tags.
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=0)
        _, start, self.end = hparams_summaries(hparams, {})
        self.writer.file_writer.add_summary(start)
        for record in history:
            self.epoch(record)

    def epoch(self, record: dict) -> None:
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, record["epoch"])
        self.writer.flush()

    def finish(self, final: dict[str, float], epoch: int) -> None:
        """The run's figures at its last epoch, and its HParams row marked ended."""
        for tag, value in final.items():
            self.writer.add_scalar(tag, value, epoch)
        self.writer.file_writer.add_summary(self.end)
        self.writer.close()
