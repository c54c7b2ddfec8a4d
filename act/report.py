"""`act report`: run folders -> one table, beside the paper's figures (ACT_SPEC.md)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from act.errors import ActError

# Test accuracy (%), mean of the last 10 epochs, as the paper reports it.
PAPER = {
    ("cifar100n", "symmetric", 0.2): 65.51, ("cifar100n", "symmetric", 0.8): 40.74,
    ("cifar100n", "asymmetric", 0.4): 63.48, ("cifar80n", "symmetric", 0.2): 67.09,
    ("cifar80n", "symmetric", 0.8): 38.58, ("cifar80n", "asymmetric", 0.4): 64.40,
    ("web-aircraft", "none", 0.0): 86.56, ("web-bird", "none", 0.0): 81.43, ("web-car", "none", 0.0): 88.75,
    ("food101n", "none", 0.0): 86.81,
}
PAPER_STANDARD = {("cifar100n", "symmetric", 0.2): 35.14, ("cifar100n", "symmetric", 0.8): 4.41,
                  ("cifar100n", "asymmetric", 0.4): 27.29}
HEADERS = ("run", "data", "noise", "method", "epochs", "rtm last-10", "best", "ntm last-10", "sel prec", "sel rec",
           "s/epoch", "paper", "note")


class BrokenRun(Exception):
    """A run folder whose files cannot be read as a finished run; the report lists it and goes on."""


def find_runs(paths: list[str]) -> list[Path]:
    """Run folders among `paths`: each path is a run folder or a folder of run folders."""
    runs = []
    for path in map(Path, paths):
        if (path / "summary.json").is_file():
            runs.append(path)
        elif path.is_dir():
            runs += sorted(p for p in path.iterdir() if (p / "summary.json").is_file())
        else:
            raise ActError(f"{path} is not a folder")
    if not runs:
        raise ActError(f"no finished run (a folder with summary.json) under {', '.join(paths)}")
    return runs


def read_run(run: Path) -> tuple[dict, dict]:
    """(summary, config) of a finished run, or BrokenRun naming the file that is not right."""
    try:
        summary = json.loads((run / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        raise BrokenRun(f"summary.json cannot be read as JSON ({exc})") from exc
    try:
        cfg = yaml.safe_load((run / "config.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise BrokenRun(f"config.yaml cannot be read ({' '.join(str(exc).split())})") from exc
    if not isinstance(summary, dict) or not isinstance(cfg, dict):
        raise BrokenRun("summary.json or config.yaml does not hold a mapping")
    return summary, cfg


def divergence(run: Path, summary: dict) -> str:
    """Where the run's numbers stopped being finite (NaN or inf in metrics.jsonl or the summary), or ""."""
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            return "broken: metrics.jsonl holds a line that is not JSON"
        bad = [key for key, value in record.items() if isinstance(value, float) and not math.isfinite(value)]
        if bad:
            return f"diverged: {bad[0]}={record[bad[0]]} at epoch {record.get('epoch')} (metrics.jsonl)"
    bad = [f"{part}.{key}" for part in ("rtm", "ntm") for key, value in (summary.get(part) or {}).items()
           if isinstance(value, float) and not math.isfinite(value)]
    return f"diverged: {bad[0]} is not finite (summary.json)" if bad else ""


def row(run: Path) -> list[str]:
    try:
        summary, cfg = read_run(run)
        return cells(run, summary, cfg) + [divergence(run, summary)]
    except BrokenRun as exc:
        return [run.name] + ["-"] * (len(HEADERS) - 2) + [f"broken: {exc}"]
    except (KeyError, TypeError, ValueError) as exc:
        return [run.name] + ["-"] * (len(HEADERS) - 2) + [f"broken: summary.json or config.yaml lacks {exc}"]


def cells(run: Path, summary: dict, cfg: dict) -> list[str]:
    noise = cfg["data"]["noise"]
    key = (cfg["data"]["name"], noise["type"], round(noise["closeset_ratio"], 2) if noise["type"] != "none" else 0.0)
    paper = (PAPER if cfg["method"]["name"] == "act" else PAPER_STANDARD).get(key)
    rtm, ntm, sel = summary["rtm"], summary["ntm"], summary["selection"]

    def pct(value, std=None):
        if value is None:
            return "-"
        return f"{value:.2f}" + (f" +- {std:.2f}" if std is not None else "")

    noise_text = "none" if noise["type"] == "none" else f"{noise['type'][:4]} {noise['closeset_ratio']:.0%}"
    return [run.name, cfg["data"]["name"], noise_text, cfg["method"]["name"], str(summary["epochs"]),
            pct(rtm["last10_mean"], rtm["last10_std"]), pct(rtm["best"]), pct(ntm["last10_mean"]),
            pct(sel["precision"]), pct(sel["recall"]),
            "-" if summary["epoch_seconds_median"] is None else f"{summary['epoch_seconds_median']:.2f}",
            "-" if paper is None else f"{paper:.2f}"]


def report(paths: list[str], markdown: bool = False) -> str:
    rows = [row(run) for run in find_runs(paths)]
    if markdown:
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [list(HEADERS), *rows])
