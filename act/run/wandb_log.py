"""Weights & Biases, when a run asks for it (`run.wandb`: off | online | offline; off by default).

Each epoch's numbers go to a W&B run under the TensorBoard tags (act/run/tags.py) at step =
epoch, the run's flat config is the W&B run's config, and its figures at the end (RTM last-10
mean and best, NTM last-10 mean) its summary. The W&B run is named after the run folder and
grouped by the experiment (the report's group title: the seeds of a setting side by side).
Offline, wandb writes under the run folder (`wandb/`, wandb's own) and needs no network;
`wandb sync <run folder>/wandb/offline-run-*` uploads it later. A resumed run continues the
same W&B run: its id is kept in the run folder (`wandb.id`).

wandb is not a dependency: act/run/runtime.py refuses run.wandb on a machine without it, before
anything is made.
"""
from __future__ import annotations

import os
import secrets

from act.config import Config
from act.run.files import write_text
from act.run.folder import WANDB_ID, RunFolder
from act.run.tags import scalars, settings

PROJECT = "act"  # the W&B project when the environment names none (WANDB_PROJECT, wandb's own variable)


class WandbLog:
    """One run's W&B run, opened before its first epoch (as a TensorBoard writer is)."""

    def __init__(self, folder: RunFolder, cfg: Config, title: str):
        import wandb

        # reinit: the runs of a pack (act train --pack) each log to a W&B run of their own, at once.
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or PROJECT, mode=cfg.run.wandb,
                              dir=str(folder.path), name=folder.path.name, group=title, id=run_id(folder),
                              resume="allow", config=settings(cfg), reinit="create_new")

    def epoch(self, record: dict) -> None:
        self.run.log(scalars(record), step=record["epoch"])

    def finish(self, final: dict[str, float], epoch: int) -> None:
        """The run's figures into the W&B run's summary, and the W&B run ended."""
        self.run.summary.update(final)
        self.run.finish()


def run_id(folder: RunFolder) -> str:
    """The W&B id of the run in `folder`: the one kept there, or a new one kept from now on."""
    path = folder / WANDB_ID
    if path.is_file():
        return path.read_text().strip()
    new = secrets.token_hex(4)  # wandb's ids are 8 characters of [0-9a-z]
    write_text(path, new + "\n")
    return new
