"""The names a run's numbers go by in TensorBoard and Weights & Biases (act/run/outputs.py,
act/run/wandb_log.py), and the settings they show beside them.

Every scalar is grouped under one of four sections, `test/`, `train/`, `selection/` and
`speed/`, so both tools show each section as one panel; the names are the spec's (rtm, ntm,
select, mining).
"""
from __future__ import annotations

from act.config import Config, flatten, override_text, to_dict

# The tag of each number of an epoch's record (act/run/records.py epoch_record); `epoch` is the
# step and `phase` a word, so neither is a scalar.
TAGS = {
    "rtm_test_acc": "test/rtm_acc", "ntm_test_acc": "test/ntm_acc",
    "rtm_loss": "train/rtm_loss", "ntm_loss": "train/ntm_loss",
    "rtm_train_acc": "train/rtm_acc", "ntm_train_acc": "train/ntm_acc",
    "lr": "train/rtm_lr", "lr1": "train/ntm_lr", "samples_seen": "train/samples",
    "sel_precision": "selection/precision", "sel_recall": "selection/recall", "sel_f1": "selection/f1",
    "selected_frac": "selection/selected_fraction", "mining": "selection/mining",
    "epoch_seconds": "speed/epoch_s", "train_seconds": "speed/train_s", "images_per_s": "speed/images_per_s",
}
# The run's figures (summary.json: part, key), written once at its last epoch: what the paper
# reports (the RTM's mean over the last 10 epochs), the RTM's best and the NTM's.
FINAL_TAGS = {
    ("rtm", "last10_mean"): "test/rtm_last10_mean", ("rtm", "best"): "test/rtm_best",
    ("ntm", "last10_mean"): "test/ntm_last10_mean",
}


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def scalars(record: dict) -> dict[str, float]:
    """An epoch's numbers under their tags; a null (the selection of a warm-up epoch) is left out,
    and so is a key no tag names (a record written by an older act, read back on resume)."""
    return {TAGS[key]: value for key, value in record.items() if key in TAGS and is_number(value)}


def final_scalars(summary: dict) -> dict[str, float]:
    """The run's figures under FINAL_TAGS (those it has: a diverged run's may be null)."""
    figures = {tag: summary[part][key] for (part, key), tag in FINAL_TAGS.items()}
    return {tag: value for tag, value in figures.items() if is_number(value)}


def settings(cfg: Config) -> dict[str, str | int | float]:
    """The run's config, flat (`optim.lr`, ...), as TensorBoard's HParams view and a W&B run's
    config show it: a key left unset (null) is left out, a bool reads as written (true, false)."""
    flat = flatten(to_dict(cfg))
    return {key: override_text(value) if isinstance(value, bool) else value
            for key, value in flat.items() if isinstance(value, (bool, int, float, str))}
