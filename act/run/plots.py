"""Curves of runs (matplotlib, the optional `plots` extra): one figure per group of seeds.

Left: test accuracy of the RTM and the NTM per epoch. Right: selection precision, recall,
F1 and the selected fraction per epoch. Each seed is a thin line and their mean a bold one;
epochs where the memorisation check allowed mining are shaded (darker: in more of the
epoch's steps); a dotted line marks the end of warm-up, red where a last-10 mean averages
warm-up epochs. Drawn on a bare Figure with the Agg canvas: no pyplot state, no display needed.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from act.run.files import atomic_write
from act.run.metrics import warmup_in_last_k

ACCURACY = (("rtm_test_acc", "RTM", "tab:blue"), ("ntm_test_acc", "NTM", "tab:orange"))
SELECTION = (("sel_precision", "precision", "tab:green"), ("sel_recall", "recall", "tab:red"),
             ("sel_f1", "F1", "tab:purple"), ("selected_frac", "selected %", "tab:gray"))


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def series(histories: list[list[dict]], key: str) -> np.ndarray:
    """(runs, epochs) array of `key` in percent, NaN where a run has no value (null, or fewer epochs)."""
    epochs = max((len(h) for h in histories), default=0)
    values = np.full((len(histories), epochs), np.nan)
    scale = 100.0 if key in ("selected_frac", "mining") else 1.0  # fractions shown as percent
    for run, history in enumerate(histories):
        for record in history:
            value = record.get(key)
            if isinstance(value, (int, float)) and 0 <= record.get("epoch", -1) < epochs:
                values[run, record["epoch"]] = scale * value
    return values


def mean_over_runs(values: np.ndarray) -> np.ndarray:
    """The mean over runs of each epoch, NaN where no run has a value (without numpy's warning)."""
    counts = np.sum(~np.isnan(values), axis=0)
    sums = np.nansum(values, axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def draw_curves(histories: list[list[dict]], title: str):
    """The figure of one group: `histories` holds each seed's metrics records."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2)
    epochs = np.arange(max((len(h) for h in histories), default=0))
    for ax, lines, ylabel in ((left, ACCURACY, "test accuracy (%)"), (right, SELECTION, "selection (%)")):
        shade_mining(ax, mean_over_runs(series(histories, "mining")) / 100.0)
        mark_warmup(ax, histories)
        for key, name, color in lines:
            values = series(histories, key)
            if np.isnan(values).all():
                continue
            if len(histories) > 1:
                for seed_values in values:
                    ax.plot(epochs, seed_values, color=color, linewidth=0.7, alpha=0.45)
            ax.plot(epochs, mean_over_runs(values), color=color, linewidth=2.2,
                    label=f"{name} (mean)" if len(histories) > 1 else name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    seeds = f"{len(histories)} seeds: thin lines, mean bold" if len(histories) > 1 else "1 run"
    fig.suptitle(f"{title}  ({seeds})", fontsize=11, parse_math=False)  # names from configs: text, never TeX
    return fig


def shade_mining(ax, mining: np.ndarray) -> None:
    """Shade each epoch by the share of its steps in which mining was allowed."""
    first = next((epoch for epoch, share in enumerate(mining) if share > 0), None)
    for epoch, share in enumerate(mining):
        if share > 0:
            ax.axvspan(epoch - 0.5, epoch + 0.5, color="tab:olive", alpha=0.1 + 0.4 * float(share), linewidth=0,
                       label="mining on (darker: more steps)" if epoch == first else None)


def mark_warmup(ax, histories: list[list[dict]]) -> None:
    """A dotted line at the end of warm-up; red, and saying so, where the last-10 mean of a run
    averages warm-up epochs (its figure is then not the robust phase's)."""
    warmup = max((sum(r.get("phase") == "warmup" for r in h) for h in histories), default=0)
    averaged, window = max((warmup_in_last_k(h) for h in histories), default=(0, 0))
    if warmup and averaged:
        ax.axvline(warmup - 0.5, color="tab:red", linestyle=":", linewidth=1.5,
                   label=f"end of warm-up: {averaged} of the {window} epochs averaged are warm-up")
    elif warmup:
        ax.axvline(warmup - 0.5, color="black", linestyle=":", linewidth=1, label="end of warm-up")


def save_curves(histories: list[list[dict]], title: str, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = draw_curves(histories, title)
    FigureCanvasAgg(fig)
    atomic_write(Path(path), lambda p: fig.savefig(p, format="png"))
