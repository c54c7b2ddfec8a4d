"""`act report`: run folders -> tables in the paper's layout, over seeds, beside its figures.

Runs that differ only in `run.seed` (and in where they were written, or how they showed
progress) form a group. Table 1 has one row per data set and noise setting, in the paper's
order, and one column per method or ablation: each cell the RTM's last-10 mean over the
group's finished seeds +- their sample standard deviation (n seeds), then the paper's figure
(ACT_SPEC.md) and the difference where it has one. Table 2: final selection precision,
recall, F1 and the median seconds per epoch of each group. Table 3: every run folder found,
with its state: finished, running, stopped, diverged or broken. Only finished runs enter
the means; no run is left out of table 3.

`--format csv|json` gives each group's figures as data: beside the display labels (setting,
variant) its data set, noise type and ratios, method, the experiment keys whose values differ from
the config's defaults (`switches`), the seeds as a list and how many of the epochs its last-10 mean
averages were warm-up epochs (each such group is also one warning line on stderr). `--where
KEY=VALUE` keeps the runs whose provenance.json (act/run/provenance.py) says so, `--by KEY` splits
each group by it.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from act.config import DATA_PLACES, Config, flatten, override_text, to_dict
from act.errors import ActError
from act.run import plots
from act.run.files import write_text
from act.run.folder import CONFIG, METRICS, PROVENANCE_ENTRY, SUMMARY, RunFolder, check_replaceable
from act.run.metrics import warmup_in_last_k
from act.run.state import RunInfo, read_run
from act.run.titles import method_label, setting_label, setting_of

# Test accuracy (%), mean of the last 10 epochs, as the paper reports it, by
# (data set, noise type, close-set ratio, open-set ratio).
PAPER = {
    ("cifar100n", "symmetric", 0.2, 0.0): 65.51, ("cifar100n", "symmetric", 0.8, 0.0): 40.74,
    ("cifar100n", "asymmetric", 0.4, 0.0): 63.48, ("cifar80n", "symmetric", 0.2, 0.2): 67.09,
    ("cifar80n", "symmetric", 0.8, 0.2): 38.58, ("cifar80n", "asymmetric", 0.4, 0.2): 64.40,
    ("web-aircraft", "none", 0.0, 0.0): 86.56, ("web-bird", "none", 0.0, 0.0): 81.43,
    ("web-car", "none", 0.0, 0.0): 88.75, ("food101n", "none", 0.0, 0.0): 86.81,
}
PAPER_STANDARD = {("cifar100n", "symmetric", 0.2, 0.0): 35.14, ("cifar100n", "symmetric", 0.8, 0.0): 4.41,
                  ("cifar100n", "asymmetric", 0.4, 0.0): 27.29}
# CIFAR-N (human labels) as Wei et al. (ICLR 2022) benchmark it: best-epoch test accuracy (%) of a
# ResNet-34 (most methods) over 100 epochs, mean and std of 5 runs; CE and the best method of their
# table but SOP, by setting (ACT_SPEC.md "Human label noise": the table, the sources of each
# figure, and SOP's row).
CIFAR_N = {
    ("cifar10n", "human:aggre_label", 0.0, 0.0): ((87.77, 0.38), ("CORES*", 95.25, 0.09)),
    ("cifar10n", "human:random_label1", 0.0, 0.0): ((85.02, 0.65), ("Divide-Mix", 95.16, 0.19)),
    ("cifar10n", "human:random_label2", 0.0, 0.0): ((86.46, 1.79), ("Divide-Mix", 95.23, 0.07)),
    ("cifar10n", "human:random_label3", 0.0, 0.0): ((85.16, 0.61), ("PES (Semi)", 95.22, 0.13)),
    ("cifar10n", "human:worse_label", 0.0, 0.0): ((77.69, 1.55), ("PES (Semi)", 92.68, 0.22)),
    ("cifar100n", "human:noisy_label", 0.0, 0.0): ((55.50, 0.66), ("Divide-Mix", 71.13, 0.48)),
}
# The paper's row order, then CIFAR-N's; other settings follow, sorted.
PAPER_ROWS = list(PAPER) + [("clothing1m", "none", 0.0, 0.0)] + list(CIFAR_N)
# Keys that do not change the experiment: runs differing only in these share a group.
NOT_EXPERIMENT = ("run.seed", "run.out_dir", "run.name", "run.progress", "run.plots", "run.tensorboard",
                  "run.wandb")
RUN_FILES = (CONFIG, METRICS, SUMMARY)  # any of them marks a run folder
# Keys with a column of their own in the formats' rows; the other experiment keys differing from
# the defaults are its `switches`.
OWN_COLUMNS = ("data.name", "data.noise.type", "data.noise.closeset_ratio", "data.noise.openset_ratio", "method.name")
# What --where and --by may name: the provenance of a run's machine and code, not of one start.
PROVENANCE_KEYS = tuple(k for k in PROVENANCE_ENTRY if k not in ("kind", "time", "argv"))


@dataclass
class Group:
    setting: tuple  # a PAPER key
    variant: str  # the column: method, ablations, other differences
    runs: list[RunInfo]
    curves: str | None = None  # the PNG's file name, once drawn

    @property
    def done(self) -> list[RunInfo]:
        return [r for r in self.runs if r.finished]


def find_runs(paths: list[str]) -> list[Path]:
    """Run folders at or under `paths` (folders holding config.yaml, metrics.jsonl or summary.json)."""
    runs: list[Path] = []
    seen: set[str] = set()  # a run reached twice (two paths, a link) is one run
    for path in map(Path, paths):
        if not path.is_dir():
            raise ActError(f"{path} is not a folder")
        for folder, subdirs, names in os.walk(path):
            subdirs.sort()  # and walked on: a config.yaml of a user's does not hide the runs below it
            if any(name in names for name in RUN_FILES) and os.path.realpath(folder) not in seen:
                seen.add(os.path.realpath(folder))
                runs.append(Path(folder))
    if not runs:
        raise ActError(f"no run folder (one holding {', '.join(RUN_FILES)}) under {', '.join(paths)}")
    return runs


def paper_figure(group: Group) -> float | None:
    table = {"ACT": PAPER, "Standard": PAPER_STANDARD}.get(group.variant.split(" [")[0], {})
    return table.get(group.setting)


def experiment(cfg: dict) -> tuple:
    """What a group's runs share: where their data lie is not part of it (a table trained from two
    copies of CIFAR is one table, as a run resumed from moved data is one run)."""
    return tuple(sorted((k, json.dumps(v)) for k, v in cfg.items() if k not in NOT_EXPERIMENT + DATA_PLACES))


def group_runs(runs: list[RunInfo], by: str | None = None) -> list[Group]:
    """Readable runs grouped by experiment; groups sharing a setting and a method label are told
    apart by the keys in which they differ, e.g. "ACT [optim.epochs=4]". With `by` (a provenance
    key), the runs of an experiment are split by its value, e.g. "ACT [host=gpu1]"."""
    by_experiment: dict[tuple, list[RunInfo]] = {}
    for run in runs:
        if run.config:
            key = (experiment(run.config), provenance_value(run, by) if by else None)
            by_experiment.setdefault(key, []).append(run)
    cells: dict[tuple, list[list[RunInfo]]] = {}
    for members in by_experiment.values():
        cfg = members[0].config
        cells.setdefault((setting_of(cfg), method_label(cfg)), []).append(members)
    groups = []
    for (setting, label), experiments in cells.items():
        for members in experiments:
            tag = f" [{by}={provenance_value(members[0], by)}]" if by else ""
            groups.append(Group(setting, label + differences(members[0].config, experiments) + tag, members))
    rank = {s: i for i, s in enumerate(PAPER_ROWS)}
    groups.sort(key=lambda g: (rank.get(g.setting, len(rank)), setting_label(g.setting), g.variant))
    return groups


def differences(cfg: dict, experiments: list[list[RunInfo]]) -> str:
    others = [members[0].config for members in experiments]
    keys = [k for k in cfg if k not in NOT_EXPERIMENT and any(o.get(k) != cfg[k] for o in others)]
    return f" [{', '.join(f'{k}={cfg[k]}' for k in keys[:3])}{', ...' if len(keys) > 3 else ''}]" if keys else ""


def switches(cfg: dict) -> dict:
    """The experiment keys of a run's config whose values differ from the config's defaults
    (act/config.py), less those with a column of their own and the places of the data."""
    defaults = flatten(to_dict(Config()))
    return {k: v for k, v in cfg.items()
            if k not in NOT_EXPERIMENT + OWN_COLUMNS + DATA_PLACES and v != defaults.get(k)}


# ---- provenance: --where and --by ----

def provenance_value(run: RunInfo, key: str) -> str:
    """A run's `key` of provenance.json as text: the values of its entries, each once, in order,
    joined by "," (a run resumed on another host: "gpu1,gpu2"); "unknown" for a run without one."""
    if not run.provenance:
        return "unknown"
    return ",".join(dict.fromkeys(override_text(entry[key]) for entry in run.provenance))


def matches(value: str, wanted: set[str]) -> bool:
    """Whether a provenance value is one of `wanted`; a version without its local label matches its
    builds (torch=2.14.1: 2.14.1+cu130 and 2.14.1+cpu)."""
    return value in wanted or value.partition("+")[0] in wanted


def provenance_key(key: str, option: str) -> str:
    if key not in PROVENANCE_KEYS:
        raise ActError(f"{option} {key}: not a provenance key; give one of {', '.join(PROVENANCE_KEYS)}")
    return key


def read_where(items: list[str]) -> dict[str, set[str]]:
    """--where KEY=VALUE items as key -> the values any of which a run may have; keys are all required."""
    where: dict[str, set[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ActError(f"--where {item}: give KEY=VALUE, e.g. --where torch=2.14.1")
        where.setdefault(provenance_key(key, "--where"), set()).add(value)
    return where


def select(runs: list[RunInfo], where: dict[str, set[str]], items: list[str]) -> list[RunInfo]:
    """The runs whose provenance has, for each key of `where`, one of its values; none is an error
    naming the values the runs have."""
    chosen = [r for r in runs if all(matches(provenance_value(r, key), values) for key, values in where.items())]
    if not chosen:
        found = "; ".join(f"{key}: {', '.join(sorted({provenance_value(r, key) for r in runs}))}" for key in where)
        raise ActError(f"no run of the {len(runs)} found matches --where {' '.join(items)} (their {found})")
    return chosen


# ---- figures of a group ----

def stats(values: list[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, sample std or None for n < 2, n) over the finite values."""
    xs = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not xs:
        return None, None, 0
    return float(np.mean(xs)), float(np.std(xs, ddof=1)) if len(xs) > 1 else None, len(xs)


def group_record(group: Group, by: str | None = None) -> dict:
    """Every figure of a group, as the JSON and CSV formats give them and the tables show them:
    its display labels, then what it is as data, then its figures."""
    done, cfg = group.done, group.runs[0].config
    mean, std, n = stats([r.summary["rtm"]["last10_mean"] for r in done])
    paper, warmup = paper_figure(group), warmup_averaged(group)
    data, _, closeset, openset = group.setting  # the setting's noise of human labels names the set: the config's type
    record = {"setting": setting_label(group.setting), "variant": group.variant, "data": data,
              "noise_type": cfg["data.noise.type"],
              "closeset_ratio": closeset, "openset_ratio": openset, "method": cfg["method.name"],
              "switches": switches(cfg), **({by: provenance_value(group.runs[0], by)} if by else {}), "n": n,
              "seeds": sorted(r.config["run.seed"] for r in done),
              "rtm_last10_mean": mean, "rtm_last10_std": std, "paper": paper,
              "diff": None if mean is None or paper is None else mean - paper,
              "warmup_in_last10": None if warmup is None else warmup[0]}
    for key in ("precision", "recall", "f1"):
        record[f"sel_{key}_mean"], record[f"sel_{key}_std"], _ = stats([r.summary["selection"].get(key) for r in done])
    record["rtm_best_mean"], record["rtm_best_std"], _ = stats([r.summary["rtm"].get("best") for r in done])
    record["noise_rate"], _, _ = stats([100.0 * r.summary["noise"]["actual_noise_rate"] for r in done
                                       if isinstance(r.summary.get("noise"), dict)
                                       and isinstance(r.summary["noise"].get("actual_noise_rate"), (int, float))])
    record.update(published(group.setting))
    seconds = [r.summary.get("epoch_seconds_median") for r in done]
    seconds = [s for s in seconds if isinstance(s, (int, float))]
    record["epoch_seconds_median"] = float(np.median(seconds)) if seconds else None
    record["not_in_mean"] = [f"{shown(r.path)}: {r.state}" for r in group.runs if not r.finished]
    record["curves"] = group.curves
    record["runs"] = [shown(r.path) for r in group.runs]
    return record


def warmup_averaged(group: Group) -> tuple[int, int] | None:
    """(warm-up epochs, epochs) in the window of the last-10 means of the group's finished runs
    (the most of any run); None where none has its metrics."""
    windows = [warmup_in_last_k(r.history) for r in group.done if r.history]
    return max(windows) if windows else None


def warn_warmup(groups: list[Group]) -> None:
    """One line on stderr per group whose last-10 mean averages warm-up epochs: a figure that is
    not the robust phase's (optim.epochs=12 with 10 warm-up epochs averages 8 of them)."""
    for group in groups:
        averaged, window = warmup_averaged(group) or (0, 0)
        if averaged:
            cfg = group.runs[0].config
            print(f"act report: warning: {setting_label(group.setting)}, {group.variant}: {averaged} of the {window} "
                  f"epochs its last-10 mean averages are warm-up epochs (optim.epochs={cfg['optim.epochs']}, "
                  f"optim.warmup_epochs={cfg['optim.warmup_epochs']})", file=sys.stderr)


def published(setting: tuple) -> dict:
    """Wei et al.'s CE and best-method figures of a CIFAR-N setting (None elsewhere)."""
    (ce, ce_std), (method, best, best_std) = CIFAR_N.get(setting, ((None, None), (None, None, None)))
    return {"wei_ce": ce, "wei_ce_std": ce_std, "wei_best_method": method, "wei_best": best, "wei_best_std": best_std}


def run_record(run: RunInfo, groups: list[Group]) -> dict:
    group = next((g for g in groups if run in g.runs), None)
    rtm = run.summary.get("rtm", {}) if run.finished else {}
    return {"run": shown(run.path), "setting": setting_label(group.setting) if group else None,
            "variant": group.variant if group else None, "seed": run.config.get("run.seed"),
            "epochs": len(run.history) if run.history else run.summary.get("epochs"),
            "epochs_total": run.config.get("optim.epochs"), "rtm_last10_mean": rtm.get("last10_mean"),
            "state": run.state, **{key: provenance_value(run, key) for key in PROVENANCE_KEYS}}


# ---- rendering ----

def shown(path: Path) -> str:
    """A path as text any file or terminal takes: bytes of a name that are not UTF-8 shown as U+FFFD."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def csv_cell(value):
    """A text cell a spreadsheet would run as a formula (=, +, -, @ first) is kept as text with a
    leading quote; numbers stay numbers."""
    return f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_text(value):
    """A list as its items joined by ";", a mapping as key=value pairs joined by ";"; else the value."""
    if isinstance(value, list):
        return ";".join(map(override_text, value))
    if isinstance(value, dict):
        return ";".join(f"{k}={override_text(v)}" for k, v in value.items())
    return value


def num(value: float | None, std: float | None = None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + ["| " + " | ".join(r) + " |" for r in rows]


def results_table(groups: list[Group], records: list[dict]) -> list[str]:
    """Table 1: rows = settings in the paper's order, columns = variants (+ paper, Δ where known)."""
    variants = sorted({g.variant for g in groups}, key=lambda v: (not v.startswith("ACT"), v != "ACT", v))
    with_paper = {g.variant for g in groups if paper_figure(g) is not None}
    headers = ["setting"]
    for v in variants:
        headers += [v] + (["paper", "Δ"] if v in with_paper else [])
    rows: dict[str, list[str]] = {}
    for group, rec in zip(groups, records):
        row = rows.setdefault(rec["setting"], [rec["setting"]] + [""] * (len(headers) - 1))
        col = headers.index(group.variant)
        mean = num(rec["rtm_last10_mean"], rec["rtm_last10_std"])
        row[col] = f"{mean} (n={rec['n']})" if rec["n"] else "no finished run"
        if group.variant in with_paper:
            row[col + 1], row[col + 2] = num(rec["paper"]), signed(rec["diff"])
    return md_table(headers, list(rows.values()))


def signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def selection_table(records: list[dict]) -> list[str]:
    rows = [[r["setting"], r["variant"], str(r["n"]), num(r["sel_precision_mean"], r["sel_precision_std"], 1),
             num(r["sel_recall_mean"], r["sel_recall_std"], 1), num(r["sel_f1_mean"], r["sel_f1_std"], 1),
             num(r["epoch_seconds_median"])] for r in records]
    return md_table(["setting", "variant", "n", "sel precision %", "sel recall %", "sel F1 %", "s/epoch (median)"], rows)


def cifar_n_table(records: list[dict]) -> list[str]:
    """Our runs on CIFAR-N's human labels beside Wei et al.'s CE and best method; [] without such runs."""
    rows = [[r["setting"], r["variant"], str(r["n"]), num(r["noise_rate"]), num(r["rtm_last10_mean"], r["rtm_last10_std"]),
             num(r["rtm_best_mean"], r["rtm_best_std"]), num(r["wei_ce"], r["wei_ce_std"]),
             f"{num(r['wei_best'], r['wei_best_std'])} ({r['wei_best_method']})"] for r in records if r["wei_ce"] is not None]
    if not rows:
        return []
    return ["", "## CIFAR-N human labels beside Wei et al. (ICLR 2022)", "",
            "Theirs: a ResNet-34 (most methods) for 100 epochs, best-epoch test accuracy, mean ± std of 5 runs; "
            "best: of their table but SOP (docs/ACT_SPEC.md). Ours: "
            "the robust net, over seeds; noise: the run's labels that differ from CIFAR's, measured.", ""] + \
        md_table(["setting", "variant", "n", "noise %", "ours last-10", "ours best epoch", "CE (Wei et al.)",
                  "best (Wei et al.)"], rows)


def runs_table(runs: list[dict]) -> list[str]:
    rows = [[r["run"], r["setting"] or "-", r["variant"] or "-", str(r["seed"] if r["seed"] is not None else "-"),
             f"{r['epochs'] or 0}/{r['epochs_total'] or '?'}", num(r["rtm_last10_mean"]), r["state"]] for r in runs]
    return md_table(["run", "setting", "variant", "seed", "epochs", "RTM last-10", "state"], rows)


def markdown(records: list[dict], groups: list[Group], runs: list[dict], curves_note: str) -> str:
    lines = ["## Test accuracy of the robust net (%, mean of the last 10 epochs)", "",
             "Mean over seeds ± sample std (n finished seeds); paper: ACT_SPEC.md; Δ = ours - paper.", ""]
    lines += results_table(groups, records)
    lines += cifar_n_table(records)
    lines += ["", "## Selection (last epoch) and speed", ""] + selection_table(records)
    lines += ["", "## Runs", ""] + runs_table(runs)
    pictures = [f"![{r['setting']}, {r['variant']}]({r['curves']})" for r in records if r["curves"]]
    if pictures or curves_note:
        lines += ["", "## Curves", ""] + pictures + ([curves_note] if curves_note else [])
    return "\n".join(lines) + "\n"


def to_csv(records: list[dict], columns: list[str] | None = None) -> str:
    out = io.StringIO()
    if columns is None:
        columns = [k for k in records[0] if k not in ("runs", "not_in_mean")] if records else ["setting"]
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: csv_cell(csv_text(v)) for k, v in record.items()})
    return out.getvalue()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def name_curves(groups: list[Group]) -> str:
    """Give each group with a run that has metrics its curves file name; a note when matplotlib is missing."""
    if not plots.available():
        return "Curves not drawn: matplotlib is not installed (pip install 'matplotlib>=3.7')."
    for group in groups:
        if curve_histories(group):
            group.curves = f"curves-{slug(setting_label(group.setting) + ' ' + group.variant)}.png"
    return ""


def curve_histories(group: Group) -> list[list[dict]]:
    """The metrics of the group's finished runs and runs under way; not a diverged or broken one."""
    return [r.history for r in group.runs if r.history and r.state.startswith(("finished", "running", "stopped"))]


def draw_group_curves(groups: list[Group], out: Path, written: dict[str, str]) -> None:
    for group in groups:
        if group.curves:
            plots.save_curves(curve_histories(group), f"{setting_label(group.setting)}, {group.variant}",
                              out / group.curves)
            written[group.curves] = digest(out / group.curves)


# In an --out folder: the files act report wrote there and their sha256, so that a later report
# replaces them, and only them, without --force.
WRITTEN = ".act-report.json"


def digest(path: Path) -> str | None:
    """The sha256 of a regular file (not a link), or None."""
    if path.is_symlink() or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_out(out: Path, names: list[str], force: bool) -> dict[str, str]:
    """The --out folder, created, with every file about to be written checked before any is
    (rundir.check_replaceable); returns what act report wrote there before."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ActError(f"--out {out} cannot be created ({exc.strerror or exc})") from exc
    written = read_written(out, force)
    for name in names:
        found = digest(out / name)
        check_replaceable(out / name, "--out", found is not None and written.get(name) == found, force)
    return written


def read_written(out: Path, force: bool) -> dict[str, str]:
    """What the --out folder's record says act report wrote there. Only a regular file is the record
    act report keeps, and is read; anything else of that name (a link, a folder, a FIFO) is checked
    as any file about to be replaced (check_replaceable), and then vouches for nothing."""
    marker = out / WRITTEN
    ours = marker.is_file() and not marker.is_symlink()
    check_replaceable(marker, "--out", ours, force)
    if not ours:
        return {}
    try:
        written = json.loads(marker.read_text())
    except (OSError, ValueError):
        return {}
    return written if isinstance(written, dict) else {}


def report(paths: list[str], fmt: str = "md", out: str | Path | None = None, force: bool = False,
           where: list[str] = (), by: str | None = None) -> str:
    """The report of the runs under `paths` in `fmt` (md, csv or json); with `out`, also its files
    (report.<fmt>, runs.csv for csv, one curves PNG per group) in that folder, each written
    atomically; a file there that act report did not write is replaced only with `force`. `where`
    (KEY=VALUE items) keeps the runs whose provenance has those values, `by` (a provenance key)
    splits each group by its value."""
    where_values = read_where(list(where))
    if by is not None:
        provenance_key(by, "--by")
    runs = select([read_run(path) for path in find_runs(paths)], where_values, list(where))
    groups = group_runs(runs, by)
    curves_note = ""
    if out is not None:
        out = Path(out)
        curves_note = name_curves(groups)
        files = [f"report.{fmt}"] + (["runs.csv"] if fmt == "csv" else []) + [g.curves for g in groups if g.curves]
        written = open_out(out, files, force)
        draw_group_curves(groups, out, written)
    records = [group_record(g, by) for g in groups]
    warn_warmup(groups)
    run_rows = [run_record(r, groups) for r in runs]
    if fmt == "json":
        text = json.dumps({"groups": records, "runs": run_rows}, indent=2, allow_nan=False)
    elif fmt == "csv":
        text = to_csv(records)
    else:
        text = markdown(records, groups, run_rows, curves_note)
    if out is not None:
        tables = {f"report.{fmt}": text, **({"runs.csv": to_csv(run_rows, list(run_rows[0]))} if fmt == "csv" else {})}
        for name, content in tables.items():
            write_text(out / name, content)
            written[name] = digest(out / name)
        write_text(out / WRITTEN, json.dumps(written, indent=2))
    return text
