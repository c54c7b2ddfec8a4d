"""`act issues` in cleanlab's conventions (issue 28, item 7): a label_quality for every training
sample (lower: more likely wrong) and is_label_issue, a documented rule for ties, and a run too
short for its suggestions to mean anything says so (act/commands/issues.py)."""
import csv

import numpy as np
import pytest

from act.commands import issues as label_issues
from act.commands.cli import main
from act.config import dump_yaml, load_config
from act.method.functions import EMA_MOMENTUM


def a_run(run, ema, selected, robust_epochs=4, given=None):
    """A web-bird run folder (no true labels known) whose bank holds `ema` and `selected`; the given
    labels are class 0 unless `given`."""
    run.mkdir()
    cfg = load_config(None, ["data.name=web-bird", "data.root=/x", "data.noise.type=none"])
    (run / "config.yaml").write_text(dump_yaml(cfg))
    ema = np.asarray(ema, dtype=np.float32)
    labels = np.zeros(len(ema), int) if given is None else np.asarray(given)
    np.savez(run / "labels.npz", noisy=labels, true=labels)
    np.savez(run / "bank.npz", count=np.asarray(selected) + 1, ema=ema, selected=np.asarray(selected),
             warmup_epochs=1, robust_epochs=robust_epochs, classes=ema.shape[1])
    return run


# Given label 0 everywhere, 4 robust epochs. Samples 0-3 are never selected and their EMA gives the
# label 0.2 (score 0.9, label_quality 0.1; sample 3's 0.20001 differs below the fourth decimal);
# the EMA suggests class 1 with 0.4 (sample 0) or 0.8 (1, 2, and 3's 0.79999). Sample 4: selected
# twice, EMA 0.6 on its label (score 0.45, not listed); sample 5: always selected (score 0).
EMA = [[0.2, 0.4, 0.4], [0.2, 0.8, 0.0], [0.2, 0.8, 0.0], [0.20001, 0.79999, 0.0], [0.6, 0.4, 0.0], [1.0, 0.0, 0.0]]
SELECTED = [0, 0, 0, 0, 2, 4]


def read(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_all_writes_every_training_sample_with_its_label_quality_and_whether_it_is_listed(tmp_path, capsys):
    run = a_run(tmp_path / "run", EMA, SELECTED)
    assert main(["issues", str(run), "--out", str(tmp_path / "all.csv"), "--all"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote 6 rows to {tmp_path / 'all.csv'}"
    rows = {int(r["index"]): r for r in read(tmp_path / "all.csv")}
    assert sorted(rows) == list(range(6))
    assert [rows[i]["label_quality"] for i in range(6)] == ["0.1", "0.1", "0.1", "0.1", "0.55", "1.0"]
    listed = set(label_issues.find_issues(run).order)
    assert {i for i, r in rows.items() if r["is_label_issue"] == "True"} == listed == {0, 1, 2, 3}


def test_the_file_is_ranked_lowest_label_quality_first_and_the_listed_samples_lead(tmp_path):
    run = a_run(tmp_path / "run", EMA, SELECTED)
    label_issues.write_csv(label_issues.find_issues(run), tmp_path / "all.csv", every=True)
    rows = read(tmp_path / "all.csv")
    qualities = [float(r["label_quality"]) for r in rows]
    assert qualities == sorted(qualities)
    assert [r["is_label_issue"] for r in rows] == ["True"] * 4 + ["False"] * 2


def test_ties_go_to_the_more_confident_suggestion_then_to_the_lower_index(tmp_path):
    """Samples 1, 2 and 3 tie as written (label_quality 0.1, suggested_probability 0.8): by index;
    sample 0, as doubted but with a suggestion of 0.4, follows them."""
    run = a_run(tmp_path / "run", EMA, SELECTED)
    issues = label_issues.find_issues(run)
    assert list(issues.order) == [1, 2, 3, 0]
    label_issues.write_csv(issues, tmp_path / "listed.csv")
    rows = read(tmp_path / "listed.csv")
    assert [int(r["index"]) for r in rows] == [1, 2, 3, 0]
    assert [r["suggested_probability"] for r in rows] == ["0.8", "0.8", "0.8", "0.4"]


def test_the_printed_list_follows_the_same_ranking(tmp_path, capsys):
    run = a_run(tmp_path / "run", EMA, SELECTED)
    assert main(["issues", str(run)]) == 0
    table = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(table) if line.split()[:1] == ["index"]) + 1
    assert [int(line.split()[0]) for line in table[start:]] == [1, 2, 3, 0]


def test_all_without_out_is_refused_in_one_line(tmp_path, capsys):
    run = a_run(tmp_path / "run", EMA, SELECTED)
    assert main(["issues", str(run), "--all"]) == 2
    assert capsys.readouterr().err == ("act: error: --all says what --out writes (every training sample); give "
                                       "--out FILE.csv too\n")


def test_a_file_of_an_earlier_act_issues_is_replaced_without_force(tmp_path):
    run = a_run(tmp_path / "run", EMA, SELECTED)
    old = tmp_path / "issues.csv"
    old.write_text(",".join(label_issues.COLUMNS) + "\n1,,0,1,0,4,0.9\n")
    label_issues.write_csv(label_issues.find_issues(run), old)
    assert list(read(old)[0])[-3:] == ["suggested_probability", "label_quality", "is_label_issue"]


def test_a_run_of_too_few_robust_epochs_says_its_suggestions_mean_nothing_yet(tmp_path):
    run = a_run(tmp_path / "run", EMA, [0, 0, 0, 0, 1, 2], robust_epochs=2)
    text = label_issues.describe(label_issues.find_issues(run), run, top=5)
    assert text.splitlines()[1] == ("  this run trained 2 robust epochs; its suggested labels are not yet meaningful "
                                    "(fewer than 4: until then each is the given label)")


def test_a_short_run_without_the_ema_is_not_told_of_suggestions_it_does_not_make(tmp_path):
    run = a_run(tmp_path / "run", EMA, [0, 0, 0, 0, 1, 2], robust_epochs=2)
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("consistency: true", "consistency: false"))
    text = label_issues.describe(label_issues.find_issues(run), run, top=5)
    assert "not yet meaningful" not in text and "no label is suggested" in text


def test_a_run_of_enough_robust_epochs_says_nothing_of_it(tmp_path):
    run = a_run(tmp_path / "run", EMA, SELECTED, robust_epochs=label_issues.ROBUST_EPOCHS_MIN)
    assert "not yet meaningful" not in label_issues.describe(label_issues.find_issues(run), run, top=5)


def test_the_minimum_is_the_first_robust_epoch_a_suggestion_can_differ_from_the_given_label():
    """The EMA starts one-hot at the given label and keeps EMA_MOMENTUM of itself per robust epoch:
    even when the net puts all its mass on one other class every epoch, that class leads only once
    the given label's share falls below one half."""
    ema = np.array([1.0, 0.0])
    leads = []
    for _ in range(label_issues.ROBUST_EPOCHS_MIN):
        ema = EMA_MOMENTUM * ema + (1 - EMA_MOMENTUM) * np.array([0.0, 1.0])
        leads.append(int(ema.argmax()))
    assert leads == [0] * (label_issues.ROBUST_EPOCHS_MIN - 1) + [1]


@pytest.mark.parametrize("consistency", [True, False], ids=["EMA updated", "consistency off"])
def test_is_label_issue_is_true_exactly_for_the_listed_samples(tmp_path, consistency):
    run = a_run(tmp_path / "run", EMA, SELECTED)
    cfg = (run / "config.yaml").read_text()
    if not consistency:
        (run / "config.yaml").write_text(cfg.replace("consistency: true", "consistency: false"))
    issues = label_issues.find_issues(run)
    label_issues.write_csv(issues, tmp_path / "all.csv", every=True)
    rows = read(tmp_path / "all.csv")
    assert [int(r["index"]) for r in rows if r["is_label_issue"] == "True"] == list(issues.order)
    assert all((r["suggested_probability"] == "") != consistency for r in rows)
