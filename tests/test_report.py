"""`act report`: finished runs in one table beside the paper's figures."""
import json
from pathlib import Path

import pytest

from act.cli import main
from act.config import dump_yaml, load_config
from act.errors import ActError
from act.report import report

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def fake_run(folder: Path, config: str, rtm_mean: float) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(dump_yaml(load_config(CONFIGS / config, ["data.root=/x"])))
    stats = {"last10_mean": rtm_mean, "last10_std": 0.5, "best": rtm_mean + 1, "final": rtm_mean}
    (folder / "summary.json").write_text(json.dumps({
        "rtm": stats, "ntm": dict(stats, last10_mean=30.0), "selection": {"precision": 90.0, "recall": 80.0, "f1": 85.0},
        "epochs": 150, "epoch_seconds_median": 1.5}))
    return folder


def test_each_run_is_a_row_beside_the_paper(tmp_path):
    fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0)
    fake_run(tmp_path / "b", "cifar80n/asym40.yaml", 63.0)
    (tmp_path / "unfinished").mkdir()
    lines = report([str(tmp_path)]).splitlines()
    assert len(lines) == 3
    assert "64.00 +- 0.50" in lines[1] and lines[1].rstrip().endswith("65.51")
    assert "asym 40%" in lines[2] and lines[2].rstrip().endswith("64.40")


def test_markdown_output(tmp_path):
    fake_run(tmp_path / "a", "cifar100n/sym80.yaml", 40.0)
    table = report([str(tmp_path / "a")], markdown=True).splitlines()
    assert table[0].startswith("| run |") and table[2].endswith("| 40.74 |  |")


def test_no_finished_run_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ActError, match="no finished run"):
        report([str(tmp_path)])
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


# ---- a damaged or diverged run is named, and the others still reported (issue 14, item 10) ----

def test_a_corrupt_summary_is_listed_as_broken_and_the_others_reported(tmp_path):
    fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0)
    (fake_run(tmp_path / "b", "cifar100n/sym20.yaml", 64.0) / "summary.json").write_text('{"rtm": {"last10')
    lines = report([str(tmp_path)]).splitlines()
    assert len(lines) == 3 and "64.00 +- 0.50" in lines[1]
    assert lines[2].startswith("b ") and "broken: summary.json cannot be read as JSON" in lines[2]


def test_a_summary_missing_an_entry_is_listed_as_broken(tmp_path):
    run = fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0)
    (run / "summary.json").write_text(json.dumps({"epochs": 3}))
    assert "broken: summary.json or config.yaml lacks 'rtm'" in report([str(run)])


def test_a_run_whose_metrics_hold_nan_is_flagged_as_diverged(tmp_path):
    run = fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 1.0)
    (run / "metrics.jsonl").write_text('{"epoch": 0, "rtm_loss": 2.3}\n{"epoch": 1, "rtm_loss": NaN}\n')
    line = report([str(run)]).splitlines()[1]
    assert line.endswith("diverged: rtm_loss=nan at epoch 1 (metrics.jsonl)")


def test_the_cli_reports_the_good_runs_beside_a_broken_one(tmp_path, capsys):
    fake_run(tmp_path / "a", "cifar100n/sym20.yaml", 64.0)
    (fake_run(tmp_path / "b", "cifar100n/sym20.yaml", 64.0) / "summary.json").write_bytes(b"\xff\xfe")
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "64.00 +- 0.50" in out and "broken: summary.json" in out
