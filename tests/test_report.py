"""`act report`: runs grouped over seeds in the paper's layout, with curves; broken runs listed."""
import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from act.commands.cli import main
from act.commands.report import report, to_csv
from act.config import dump_yaml, load_config
from act.errors import ActError
from act.run import loop as training

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
TINY = ["optim.epochs=3", "optim.warmup_epochs=1", "optim.lr_decay=cosine:1,5e-4,3", "data.train_limit=300",
        "data.test_limit=100", "run.progress=false", "run.threads=1", "run.plots=false"]


def fake_run(folder: Path, config: str, rtm_mean: float, *overrides: str, precision: float = 90.0) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(dump_yaml(load_config(CONFIGS / config, ["data.root=/x", *overrides])))
    stats = {"last10_mean": rtm_mean, "last10_std": 0.5, "best": rtm_mean + 1, "final": rtm_mean}
    (folder / "summary.json").write_text(json.dumps({
        "rtm": stats, "ntm": dict(stats, last10_mean=30.0),
        "selection": {"precision": precision, "recall": 80.0, "f1": 85.0},
        "epochs": 150, "epoch_seconds_median": 1.5}))
    return folder


def cells(text: str, first: str) -> list[str]:
    """The cells of the first Markdown row starting with `first`."""
    line = next(line for line in text.splitlines() if line.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip("|").split("|")]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Two seeds x two noise settings of the digits demo (3 epochs), one run stopped after its
    first epoch, and one whose metrics file was truncated."""
    root = tmp_path_factory.mktemp("runs")
    summaries = {}
    for ratio in ("0.2", "0.4"):
        for seed in (0, 1):
            name = f"r{ratio}-s{seed}"
            summaries[name] = training.train(load_config(None, [
                f"run.out_dir={root}", f"run.name={name}", f"run.seed={seed}", f"data.noise.closeset_ratio={ratio}",
                *TINY]))
    stopped = root / "r0.2-stopped"
    training.train(load_config(None, [f"run.out_dir={root}", "run.name=r0.2-stopped", "run.seed=2", *TINY,
                                      "data.noise.closeset_ratio=0.2"]))
    (stopped / "summary.json").unlink()  # as a run killed before its end leaves it
    broken = root / "r0.4-broken"
    broken.mkdir()
    (broken / "config.yaml").write_text((root / "r0.4-s0" / "config.yaml").read_text())
    (broken / "metrics.jsonl").write_text('{"epoch": 0, "rtm_test_acc": 50.0}\n{"epoch": 1, "rtm_te')
    return root, summaries


def test_runs_differing_only_in_seed_share_a_cell_with_mean_std_and_n(tiny_runs):
    root, summaries = tiny_runs
    text = report([str(root)])
    for ratio, row in (("0.2", "digits sym20"), ("0.4", "digits sym40")):
        means = [summaries[f"r{ratio}-s{seed}"]["rtm"]["last10_mean"] for seed in (0, 1)]
        expected = f"{statistics.mean(means):.2f} ± {statistics.stdev(means):.2f} (n=2)"
        assert cells(text, row) == [row, expected]


def test_the_selection_table_holds_the_mean_over_seeds_and_the_median_epoch_time(tiny_runs):
    root, summaries = tiny_runs
    text = report([str(root)])
    runs = [summaries[f"r0.2-s{seed}"] for seed in (0, 1)]
    precision = [s["selection"]["precision"] for s in runs]
    f1 = [s["selection"]["f1"] for s in runs]
    seconds = statistics.median(s["epoch_seconds_median"] for s in runs)
    row = cells(text.split("## Selection")[1], "digits sym20")
    assert row[1:4] == ["ACT", "2", f"{statistics.mean(precision):.1f} ± {statistics.stdev(precision):.1f}"]
    assert row[5] == f"{statistics.mean(f1):.1f} ± {statistics.stdev(f1):.1f}" and row[6] == f"{seconds:.2f}"


def test_stopped_and_broken_runs_are_listed_and_left_out_of_the_means(tiny_runs):
    root, _ = tiny_runs
    runs = report([str(root)]).split("## Runs")[1]
    assert cells(runs, str(root / "r0.2-stopped"))[1:] == ["digits sym20", "ACT", "2", "3/3", "-",
                                                           "stopped after 3 of 3 epochs"]
    assert cells(runs, str(root / "r0.4-broken"))[-1] == "broken: metrics.jsonl line 2 is not JSON (truncated?)"
    assert len([line for line in runs.splitlines() if line.startswith(f"| {root}")]) == 6


def test_a_run_being_trained_is_listed_as_running(tiny_runs, tmp_path):
    import shutil

    from act.run.folder import RunFolder

    root, _ = tiny_runs
    run = tmp_path / "live"
    shutil.copytree(root / "r0.2-stopped", run)
    with RunFolder(run).held():
        assert cells(report([str(run)]), str(run))[-1] == "running after 3 of 3 epochs"


def test_out_writes_the_report_and_one_curve_per_group(tiny_runs, tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    root, _ = tiny_runs
    text = report([str(root)], out=tmp_path / "rep")
    assert (tmp_path / "rep" / "report.md").read_text() == text
    pictures = sorted(p.name for p in (tmp_path / "rep").glob("*.png"))
    assert pictures == ["curves-digits-sym20-act.png", "curves-digits-sym40-act.png"]
    assert "![digits sym20, ACT](curves-digits-sym20-act.png)" in text
    assert Image.open(tmp_path / "rep" / pictures[0]).size == (1100, 400)


def test_json_groups_hold_the_seeds_and_name_what_was_left_out(tiny_runs):
    root, _ = tiny_runs
    data = json.loads(report([str(root)], fmt="json"))
    groups = {(g["setting"], g["variant"]): g for g in data["groups"]}
    sym40 = groups[("digits sym40", "ACT")]
    assert sym40["n"] == 2 and sym40["seeds"] == [0, 1] and sym40["paper"] is None
    assert sym40["not_in_mean"] == [f"{root / 'r0.4-broken'}: broken: metrics.jsonl line 2 is not JSON (truncated?)"]
    assert len(data["runs"]) == 6


def test_the_paper_figure_and_the_difference_stand_beside_the_mean(tmp_path):
    fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0, "run.seed=1")
    fake_run(tmp_path / "b", "cifar100n/sym20.yaml", 66.0, "run.seed=2", "run.out_dir=/elsewhere")
    fake_run(tmp_path / "c", "cifar80n/asym40.yaml", 63.0)
    fake_run(tmp_path / "d", "cifar100n/sym20.yaml", 30.0, "method.name=standard")
    text = report([str(tmp_path)])
    assert cells(text, "setting") == ["setting", "ACT", "paper", "Δ", "Standard", "paper", "Δ"]
    assert cells(text, "CIFAR100N (synthetic) sym20") == ["CIFAR100N (synthetic) sym20", "65.00 ± 1.41 (n=2)", "65.51", "-0.51",
                                               "30.00 (n=1)", "35.14", "-5.14"]
    assert cells(text, "CIFAR80N (synthetic) asym40")[:4] == ["CIFAR80N (synthetic) asym40", "63.00 (n=1)", "64.40", "-1.40"]


def test_runs_whose_data_lie_in_different_places_share_a_group(tmp_path):
    fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0, "run.seed=1", "data.root=/data/cifar-100-python")
    fake_run(tmp_path / "b", "cifar100n/sym20.yaml", 66.0, "run.seed=2", "data.root=/scratch/cifar-100-python.tar.gz")
    text = report([str(tmp_path)])
    assert cells(text, "CIFAR100N (synthetic) sym20")[1] == "65.00 ± 1.41 (n=2)"


def test_rows_follow_the_papers_order(tmp_path):
    fake_run(tmp_path / "a", "cifar80n/sym20.yaml", 60.0)
    fake_run(tmp_path / "b", "cifar100n/asym40.yaml", 60.0)
    fake_run(tmp_path / "c", "cifar100n/sym80.yaml", 30.0)
    table = report([str(tmp_path)]).split("## Selection")[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| CIFAR")]
    assert rows == ["CIFAR100N (synthetic) sym80", "CIFAR100N (synthetic) asym40", "CIFAR80N (synthetic) sym20"]


def test_ablations_are_columns_and_other_differences_are_named(tmp_path):
    fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 60.0)
    fake_run(tmp_path / "b", "cifar100n/sym20.yaml", 58.0, "method.ablation.mining=false")
    fake_run(tmp_path / "c", "cifar100n/sym20.yaml", 50.0, "optim.epochs=20")
    header = cells(report([str(tmp_path)]), "setting")
    assert header == ["setting", "ACT [optim.epochs=150]", "paper", "Δ", "ACT [optim.epochs=20]", "paper", "Δ",
                      "ACT w/o ASM"]


def test_csv_has_one_line_per_group(tmp_path):
    fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0, "run.seed=1")
    fake_run(tmp_path / "b", "cifar100n/sym20.yaml", 66.0, "run.seed=2")
    lines = report([str(tmp_path)], fmt="csv").splitlines()
    assert lines[0].startswith("setting,variant,data,noise_type,closeset_ratio,openset_ratio,method,switches,n,seeds,"
                               "rtm_last10_mean,rtm_last10_std,paper,diff,")
    assert lines[1].startswith("CIFAR100N (synthetic) sym20,ACT,cifar100n,symmetric,0.2,0.0,act,,2,1;2,65.0,1.414213562373")
    assert len(lines) == 2


def test_no_run_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ActError, match="no run folder"):
        report([str(tmp_path)])
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


# ---- a damaged or diverged run is named, and the others still reported (issue 14, item 10) ----

def test_a_corrupt_summary_is_listed_as_broken_and_the_others_reported(tmp_path):
    fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0)
    (fake_run(tmp_path / "b", "cifar100n/sym20.yaml", 64.0) / "summary.json").write_text('{"rtm": {"last10')
    text = report([str(tmp_path)])
    assert cells(text, "CIFAR100N (synthetic) sym20")[1] == "64.00 (n=1)"
    assert cells(text, str(tmp_path / "b"))[-1].startswith("broken: summary.json cannot be read as JSON")


def test_a_summary_missing_an_entry_is_listed_as_broken(tmp_path):
    run = fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0)
    (run / "summary.json").write_text(json.dumps({"epochs": 3}))
    assert cells(report([str(run)]), str(run))[-1] == "broken: summary.json lacks 'rtm.last10_mean'"


def test_a_run_whose_metrics_hold_nan_is_flagged_as_diverged(tmp_path):
    run = fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 1.0)
    (run / "metrics.jsonl").write_text('{"epoch": 0, "rtm_loss": 2.3}\n{"epoch": 1, "rtm_loss": NaN}\n')
    text = report([str(run)])
    assert cells(text, str(run))[-1] == "diverged: rtm_loss=nan at epoch 1 (metrics.jsonl)"
    assert cells(text, "CIFAR100N (synthetic) sym20")[1] == "no finished run"


def test_the_cli_reports_the_good_runs_beside_a_broken_one(tmp_path, capsys):
    fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0)
    (fake_run(tmp_path / "b", "cifar100n/sym20.yaml", 64.0) / "summary.json").write_bytes(b"\xff\xfe")
    assert main(["report", str(tmp_path), "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "64.00 (n=1)" in out and "broken: summary.json" in out


def test_a_metrics_line_that_is_not_a_record_or_a_summary_figure_that_is_text_is_broken(tmp_path):
    (fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 1.0) / "metrics.jsonl").write_text("[1, 2]\n")
    b = fake_run(tmp_path / "b", "cifar100n/sym20.yaml", 1.0)
    b.joinpath("summary.json").write_text(b.joinpath("summary.json").read_text().replace("1.5", '"fast"'))
    text = report([str(tmp_path)])
    assert cells(text, str(tmp_path / "a"))[-1] == "broken: metrics.jsonl line 1 is not an epoch's record"
    assert cells(text, str(tmp_path / "b"))[-1] == "broken: summary.json holds a figure that is not a number"


# ---- a run's config.yaml is read as strictly as a config (issue 19, items 2 and 3) ----

@pytest.mark.parametrize("edit,why", [
    (lambda t: t + "optim:\n  lr: 0.5\n", "broken: config.yaml: line"),
    (lambda t: "x: &x [a, b]\ny: *x\n" + t, "broken: config.yaml: line 2 uses an alias (*x)"),
], ids=["duplicate section", "alias"])
def test_a_run_config_that_does_not_mean_one_thing_is_broken(tmp_path, edit, why):
    run = fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0)
    (run / "config.yaml").write_text(edit((run / "config.yaml").read_text()))
    assert cells(report([str(run)]), str(run))[-1].startswith(why)


@pytest.mark.parametrize("old,new,why", [
    ("name: cifar100n", "name: [a, b]", "broken: config.yaml: data.name must be a str, got a list"),
    ("seed: 0\n  device", "seed: zero\n  device", "broken: config.yaml: run.seed must be an integer"),
], ids=["list as name", "text as seed"])
def test_a_run_config_of_wrong_types_is_broken_and_the_others_reported(tmp_path, old, new, why):
    fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0)
    run = fake_run(tmp_path / "b", "cifar100n/sym20.yaml", 64.0)
    text = (run / "config.yaml").read_text()
    assert old in text
    (run / "config.yaml").write_text(text.replace(old, new, 1))
    report_text = report([str(tmp_path)])
    assert cells(report_text, "CIFAR100N (synthetic) sym20")[1] == "64.00 (n=1)"
    assert cells(report_text, str(run))[-1].startswith(why)


def test_a_date_as_data_root_is_read_as_its_text(tmp_path):
    run = fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0)
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("root: /x", "root: 2024-01-01"))
    assert cells(report([str(run)]), str(run))[-1] == "finished"


def test_a_report_with_a_tex_like_data_set_name_draws_its_curves(tmp_path):
    pytest.importorskip("matplotlib")
    run = fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0, "optim.epochs=1")
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("name: cifar100n", r"name: $\frac{a$"))
    (run / "metrics.jsonl").write_text('{"epoch": 0, "phase": "warmup", "rtm_test_acc": 50.0}\n')
    text = report([str(run)], out=tmp_path / "out")
    assert cells(text, str(run))[-1] == "finished" and len(list((tmp_path / "out").glob("curves-*.png"))) == 1


def nan_epoch_time(folder: Path) -> Path:
    run = fake_run(folder, "cifar100n/sym20.yaml", 64.0)
    run.joinpath("summary.json").write_text(run.joinpath("summary.json").read_text().replace("1.5", "NaN"))
    return run


def test_a_summary_with_a_nan_epoch_time_is_broken(tmp_path):
    run = nan_epoch_time(tmp_path / "a")
    assert cells(report([str(run)]), str(run))[-1] == "broken: summary.json holds a figure that is not finite " \
                                                      "(epoch_seconds_median)"


@pytest.mark.parametrize("fmt", ["json", "md", "csv"])
def test_a_summary_with_a_nan_epoch_time_leaves_every_format_written_without_nan(tmp_path, capsys, fmt):
    fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0)
    nan_epoch_time(tmp_path / "b")
    assert main(["report", str(tmp_path), "--format", fmt]) == 0
    assert "NaN" not in capsys.readouterr().out


# ---- a report tells the truth about every run once (issue 19, item 6) ----

def metrics(run: Path, epochs: int) -> None:
    (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "rtm_test_acc": 50.0}) + "\n"
                                               for e in range(epochs)))


def test_a_finished_run_extended_and_killed_is_stopped_not_finished(tmp_path):
    run = fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0, "optim.epochs=400")  # its summary: 150 epochs
    metrics(run, 155)
    text = report([str(run)])
    assert cells(text, str(run))[-1] == "stopped after 155 of 400 epochs"
    assert cells(text, "CIFAR100N (synthetic) sym20")[1] == "no finished run"


def test_a_run_reached_by_two_paths_or_a_link_is_counted_once(tmp_path):
    run = fake_run(tmp_path / "runs" / "a", "cifar100n/sym20.yaml", 64.0)
    (tmp_path / "link").symlink_to(run)
    text = report([str(tmp_path / "runs"), str(run), str(tmp_path / "link")])
    assert cells(text, "CIFAR100N (synthetic) sym20")[1] == "64.00 (n=1)"


def test_a_config_yaml_above_the_runs_does_not_hide_them(tmp_path):
    (tmp_path / "config.yaml").write_text("my_project: 1\n")
    run = fake_run(tmp_path / "runs" / "a", "cifar100n/sym20.yaml", 64.0)
    assert cells(report([str(tmp_path)]), str(run))[-1] == "finished"


def test_a_fifo_in_a_run_folder_is_broken_and_does_not_block_the_report(tmp_path):
    run = fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0)
    os.mkfifo(run / "metrics.jsonl")
    os.mkfifo(run / ".lock")
    done = subprocess.run([sys.executable, "-m", "act", "report", str(tmp_path)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0 and "broken: metrics.jsonl is not a regular file" in done.stdout


def test_a_run_folder_name_that_is_not_utf8_is_shown_replaced_in_every_output(tmp_path):
    name = os.fsdecode(b"run-\xff")
    fake_run(tmp_path / "runs" / name, "cifar100n/sym20.yaml", 64.0)
    text = report([str(tmp_path / "runs")], out=tmp_path / "out")
    assert f"| {tmp_path / 'runs' / 'run-�'} |" in text
    assert (tmp_path / "out" / "report.md").read_text() == text


def test_csv_cells_a_spreadsheet_would_run_are_kept_as_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_run(tmp_path / "=HYPERLINK(1)", "cifar100n/sym20.yaml", 64.0)
    report(["=HYPERLINK(1)"], fmt="csv", out=tmp_path / "out")
    with open(tmp_path / "out" / "runs.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["run"] == "'=HYPERLINK(1)"
    groups = to_csv([{"setting": "=cmd|' /C calc'!A0", "diff": -1.5, "variant": "+x"}])
    assert groups.splitlines()[1] == "'=cmd|' /C calc'!A0,-1.5,'+x"
