"""The console: the per-epoch table a run prints, and the summary that ends it."""
from __future__ import annotations

import sys

from act.method.registry import spec_of

# The per-epoch table: (metrics key, header, width, format of a value).
COLUMNS = (
    ("epoch", "epoch", 5, "{}"), ("phase", "phase", 8, "{}"), ("lr", "lr", 8, "{:.2e}"),
    ("rtm_test_acc", "rtm%", 6, "{:.2f}"), ("ntm_test_acc", "ntm%", 6, "{:.2f}"),
    ("sel_precision", "prec%", 6, "{:.1f}"), ("sel_recall", "rec%", 6, "{:.1f}"),
    ("selected_frac", "sel", 5, "{:.2f}"), ("mining", "mining", 6, "{:.2f}"),
    ("epoch_seconds", "sec", 6, "{:.1f}"), ("images_per_s", "img/s", 7, "{:.0f}"),
)


def format_row(record: dict) -> str:
    return "  ".join(("-" if record.get(key) is None else fmt.format(record[key])).rjust(width)
                     for key, _, width, fmt in COLUMNS)


def format_header() -> str:
    return "  ".join(head.rjust(width) for _, head, width, _ in COLUMNS)


def percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f} %"


def print_summary(run, summary: dict, out=None) -> None:
    """The lines that end a run: its folder, both nets' accuracy, the selection, the epoch time.
    `run` needs `cfg`, `dir` and `history` (an act.run.build.Run); `out` defaults to the
    sys.stdout of the call (not of the import: pytest closes a test's captured stdout after it)."""
    out = sys.stdout if out is None else out
    n = run.cfg.data.noise
    rtm, ntm = summary["rtm"], summary["ntm"]
    if n.type == "none":
        noise = "no added noise"
    elif n.type == "human":
        noise = f"Wei et al.'s human labels {n.labels}"
    else:
        noise = f"{n.closeset_ratio:.0%} {n.type} noise"
    print(f"\nrun folder: {run.dir}", file=out)
    print(f"{run.cfg.method.name.upper()} on {run.cfg.data.name} with {noise} "
          f"(actual noisy labels: {summary['noise']['actual_noise_rate']:.1%})", file=out)
    if rtm["last10_mean"] is not None:
        print(f"  robust net (RTM) test accuracy: {rtm['last10_mean']:.2f} +- {rtm['last10_std']:.2f} % "
              f"(last {min(10, summary['epochs'])} epochs), best {rtm['best']:.2f} %", file=out)
    if ntm["last10_mean"] is not None:
        print(f"  normal net (NTM) test accuracy: {ntm['last10_mean']:.2f} +- {ntm['last10_std']:.2f} % "
              f"(trained on every noisy label)", file=out)
    sel = summary["selection"]
    selects = spec_of(run.cfg.method.name).selects
    if sel["precision"] is not None and selects and run.history[-1]["phase"] == "robust":
        clean = 100.0 * (1 - summary["noise"]["actual_noise_rate"])
        # Recall is undefined (None) when no training label is clean.
        print(f"  sample selection, last epoch: precision {percent(sel['precision'])} (the training labels are "
              f"{clean:.1f} % clean), recall {percent(sel['recall'])}", file=out)
    truncated = summary["truncated_images"]["count"]
    if truncated:
        print(f"  {truncated} truncated image file(s) trained on as far as PIL recovers them, as the public "
              f"scripts do (listed in summary.json)", file=out)
    if summary["epoch_seconds_median"] is not None:
        print(f"  median epoch time: {summary['epoch_seconds_median']:.2f} s on {summary['device']}", file=out)
