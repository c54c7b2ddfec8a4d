"""`act issues`: the training labels a run judged wrong, ranked by a score.

A run leaves its memory bank in `bank.npz` at its end (act/run/folder.py `RunFolder.write_bank`): `count`, `ema`, the
robust-phase selections `selected = count - warm-up epochs` (warm-up adds one to every
sample each epoch), the epochs of each phase, the data set's number of classes, and the
training files where the data set has them. A run without it (stopped early, or older) is
read from its checkpoint instead.

The score of training sample i with given (noisy) label y_i:

    score_i = 1 - (s_i / R + ema_i[y_i]) / 2

where R is the number of robust epochs trained, s_i how many of them selected the sample,
and ema_i the bank's EMA of the robust net's softmax for the sample. It is 0 for a sample
selected in every robust epoch whose EMA puts all its mass on the given label, and 1 for one
never selected whose EMA puts none there. A sample is listed as a label issue when its
score is above 1/2: on average over the two views, the run rejected the label more often
than it accepted it. The suggested label is the EMA's argmax over the data set's classes: a
head with more outputs than classes (`model.num_outputs`, Food-101N's 200) has EMA columns no
label names, and a prediction there is a wrong one, never a suggestion.

`--out FILE.csv --all` writes every training sample in cleanlab's convention
(`get_label_quality_scores`, `find_label_issues`): `label_quality = 1 - score`, in [0, 1], lower
meaning more likely mislabelled, and `is_label_issue`, true exactly for the samples listed. The
ranking, of the list and of the file alike, is: the listed samples first, then by
`label_quality` as written (4 decimals: below that, two machines' float sums differ), then by
`suggested_probability`, the EMA's probability of the suggested label, highest first (of two
labels equally doubted, the one the run would replace with more confidence leads), then by
index.

A run of fewer than ROBUST_EPOCHS_MIN robust epochs says its suggestions mean nothing yet: the EMA
starts one-hot at the given label and keeps 0.8 of itself per epoch (ACT_SPEC.md), so after R
epochs the given label holds at least 0.8^R of it, more than all other classes together until
0.8^R < 1/2, i.e. R = 4: before that every suggested label is the given one.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from act.config import Config
from act.datasets.registry import clean_known
from act.errors import ActError
from act.run.files import atomic_write
from act.run.folder import BANK, CHECKPOINT, CONFIG, LABELS, Bank, RunFolder, check_replaceable

THRESHOLD = 0.5
ROBUST_EPOCHS_MIN = 4  # the module docstring's: from 4 robust epochs on a suggestion may differ from the given label
DECIMALS = 4  # the scores as written and ranked


def read_bank(folder: RunFolder) -> Bank:
    """bank.npz, or where the run has not ended, its last checkpoint's bank."""
    bank = folder.bank()
    if bank is not None:
        return bank
    state = folder.checkpoint()
    if state is None:
        raise ActError(f"{folder.path} holds neither {BANK} nor {CHECKPOINT}: the run saved no memory bank")
    return bank_from_checkpoint(state)


def bank_from_checkpoint(state: dict) -> Bank:
    """A run that has not ended: its last checkpoint holds the bank and the epochs so far."""
    history = state["history"]
    warmup = sum(r.get("phase") == "warmup" for r in history)
    count = state["bank"]["count"].numpy()
    return Bank(ema=state["bank"]["ema"].float().numpy(), selected=np.clip(count - warmup, 0, None),
                robust_epochs=sum(r.get("phase") == "robust" for r in history), files=None, classes=None)


def score(bank: Bank, given: np.ndarray) -> np.ndarray:
    """The module docstring's score, in [0, 1]; higher: more likely mislabelled."""
    rate = bank.selected / bank.robust_epochs
    agree = bank.ema[np.arange(len(given)), given]
    return 1.0 - (rate + agree) / 2.0


def rank(score: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Every sample, the most likely mislabelled first, by the module docstring's rule: listed first
    (score above THRESHOLD), then label_quality ascending, then `confidence` (the EMA's probability
    of the suggested label) descending, then index; the two scores as written (DECIMALS)."""
    quality, confidence = np.round(1.0 - score, DECIMALS), np.round(confidence, DECIMALS)
    return np.lexsort((np.arange(len(score)), -confidence, quality, score <= THRESHOLD))


@dataclass
class Issues:
    order: np.ndarray  # indices of the listed samples, most likely mislabelled first (`rank`)
    ranking: np.ndarray  # every sample in that order: `order` and then the others
    score: np.ndarray  # (N,) every sample's score
    given: np.ndarray
    suggested: np.ndarray
    bank: Bank
    flipped: np.ndarray | None  # (N,) bool, where the true labels are known (synthetic noise)
    ema_updated: bool  # False when method.ablation.consistency=false: the EMA stayed one-hot


def find_issues(run_dir: str | Path) -> Issues:
    folder = RunFolder.open(run_dir)
    run_dir, cfg = folder.path, folder.config()
    if cfg.method.name != "act":
        raise ActError(f"{folder / CONFIG}: method.name is not act; only ACT keeps the selection "
                       f"counts `act issues` ranks by")
    noisy, true = folder.labels()
    bank = read_bank(folder)
    check_fit(run_dir, bank, noisy, true)
    if bank.robust_epochs == 0:
        raise ActError(f"{run_dir}: no robust epoch was trained yet (optim.warmup_epochs="
                       f"{cfg.optim.warmup_epochs}), so no sample was selected or rejected")
    scores = score(bank, noisy)
    classes = bank.classes or class_count(cfg, bank, noisy, true)
    suggested = bank.ema[:, :classes].argmax(axis=1)
    ranking = rank(scores, bank.ema[np.arange(len(noisy)), suggested])
    order = ranking[:int(np.sum(scores > THRESHOLD))]
    return Issues(order=order, ranking=ranking, score=scores, given=noisy, suggested=suggested, bank=bank,
                  flipped=(noisy != true) if truth_known(cfg) else None,
                  ema_updated=cfg.method.ablation.consistency)


def class_count(cfg: Config, bank: Bank, noisy: np.ndarray, true: np.ndarray) -> int:
    """The classes of a run whose bank did not record them (read from a checkpoint): one per EMA
    column, or with model.num_outputs set, as many as its labels reach."""
    if cfg.model.num_outputs is None:
        return bank.ema.shape[1]
    return int(max(noisy.max(), true.max())) + 1


def check_fit(run_dir: Path, bank: Bank, noisy: np.ndarray, true: np.ndarray) -> None:
    """The bank, the labels and the files describe the same samples, and every label has an EMA column."""
    if bank.ema.ndim != 2 or bank.selected.ndim != 1:
        raise ActError(f"{run_dir}: the bank's EMA and selections are not one row per sample; the files are not "
                       f"of one run")
    n = len(noisy)
    sizes = {f"{LABELS} true": len(true), "the bank's selections": len(bank.selected), "the bank's EMA": len(bank.ema)}
    if bank.files is not None:
        sizes["the bank's files"] = len(bank.files)
    other = next((f"{name} {size}" for name, size in sizes.items() if size != n), None)
    if other:
        raise ActError(f"{run_dir}: {LABELS} holds {n} noisy labels but {other}; the files are not of one run")
    labels = np.concatenate([noisy, true])
    if n and not 0 <= labels.min() <= labels.max() < bank.ema.shape[1]:
        raise ActError(f"{run_dir}: {LABELS} holds labels outside the bank's {bank.ema.shape[1]} classes; "
                       f"the files are not of one run")


def truth_known(cfg: Config) -> bool:
    return clean_known(cfg.data.name)


def quality(issues: Issues, top: int) -> dict[str, float | int | None]:
    """Precision and recall (%) of the list, and of its first `top` entries, against the flipped labels."""
    flipped = issues.flipped
    total = int(flipped.sum())

    def measure(chosen: np.ndarray) -> tuple[float | None, float | None]:
        hits = int(flipped[chosen].sum())
        return (100.0 * hits / len(chosen) if len(chosen) else None, 100.0 * hits / total if total else None)

    precision, recall = measure(issues.order)
    top_precision, top_recall = measure(issues.order[:top])
    return {"flipped": total, "precision": precision, "recall": recall, "top": min(top, len(issues.order)),
            "top_precision": top_precision, "top_recall": top_recall}


COLUMNS = ("index", "file", "given_label", "suggested_label", "times_selected", "robust_epochs", "score")
# The file's columns beyond the printed ones: cleanlab's convention (module docstring) and the tie-break.
SCORES = ("suggested_probability", "label_quality", "is_label_issue")


def shown(name: str) -> str:
    """A file name for the terminal: each byte of it that is not UTF-8 (kept by os.listdir as a
    surrogate escape, which no terminal can print) written as \\xNN."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def rows(issues: Issues, chosen: np.ndarray) -> list[dict]:
    files = issues.bank.files
    out = []
    for i in chosen:
        quality = round(1.0 - float(issues.score[i]), DECIMALS)
        row = {"index": int(i), "file": files[i] if files else "", "given_label": int(issues.given[i]),
               "suggested_label": int(issues.suggested[i]) if issues.ema_updated else "",
               "times_selected": int(issues.bank.selected[i]), "robust_epochs": issues.bank.robust_epochs,
               "score": round(1.0 - quality, DECIMALS),
               "suggested_probability": round(float(issues.bank.ema[i, issues.suggested[i]]), DECIMALS)
               if issues.ema_updated else "",
               "label_quality": quality, "is_label_issue": bool(issues.score[i] > THRESHOLD)}
        if issues.flipped is not None:
            row["label_flipped"] = bool(issues.flipped[i])
        out.append(row)
    return out


def write_csv(issues: Issues, path: Path, force: bool = False, every: bool = False) -> None:
    """Every listed sample (`every`: every training sample), in the ranking's order, with its
    scores (`label_flipped` only where true labels are known), replacing a file at `path` only
    where act issues wrote it or `force` asks. The file is UTF-8 whatever the locale, except that
    the bytes of a file name that are not UTF-8 are written as they are on disk, so the column
    names the same files (read it with errors="surrogateescape")."""
    columns = list(COLUMNS + SCORES) + (["label_flipped"] if issues.flipped is not None else [])
    check_replaceable(path, "--out", written_by_act(path), force)
    table = rows(issues, issues.ranking if every else issues.order)

    def write(p: Path) -> None:
        with open(p, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(table)

    atomic_write(path, write)


def written_by_act(path: Path) -> bool:
    """Whether `path` is a regular file (not a link) that begins with the header act issues writes."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            header = f.readline(4096).rstrip("\r\n")
    except (OSError, UnicodeDecodeError):
        return False
    return header in {",".join(columns + flipped) for columns in (COLUMNS, COLUMNS + SCORES)
                      for flipped in ((), ("label_flipped",))}  # this version's files and the earlier ones


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def describe(issues: Issues, run_dir: Path, top: int) -> str:
    """The text `act issues` prints: what was found, how good it is where that is known, the top rows."""
    n, listed = len(issues.score), len(issues.order)
    lines = [f"{run_dir}: {listed} of {n} training labels judged wrong (score > {THRESHOLD}; "
             f"score = 1 - (times selected / {issues.bank.robust_epochs} robust epochs + EMA probability "
             f"of the given label) / 2)"]
    if issues.ema_updated and issues.bank.robust_epochs < ROBUST_EPOCHS_MIN:  # without the EMA none is suggested
        lines.append(f"  this run trained {issues.bank.robust_epochs} robust epochs; its suggested labels are not yet "
                     f"meaningful (fewer than {ROBUST_EPOCHS_MIN}: until then each is the given label)")
    if not issues.ema_updated:
        lines.append("  method.ablation.consistency=false: the bank's EMA was never updated, so the score "
                     "rests on the selections alone and no label is suggested")
    if issues.flipped is not None:
        q = quality(issues, top)
        lines.append(f"  against the {q['flipped']} truly flipped labels: precision {pct(q['precision'])}, "
                     f"recall {pct(q['recall'])}; top {q['top']}: precision {pct(q['top_precision'])}, "
                     f"recall {pct(q['top_recall'])}")
    table = [{**r, "file": shown(r["file"])} for r in rows(issues, issues.order[:top])]
    if table:
        columns = [c for c in table[0] if c not in SCORES and (c != "file" or issues.bank.files)]
        widths = {c: max(len(c), *(len(str(r[c])) for r in table)) for c in columns}
        lines.append("  ".join(c.rjust(widths[c]) for c in columns))
        lines += ["  ".join(str(r[c]).rjust(widths[c]) for c in columns) for r in table]
    return "\n".join(lines)
