"""`act report`'s results as data (issue 28, item 6) and its provenance filters (item 5): machine
columns in --format csv|json, the warning for a last-10 mean over warm-up epochs, --where and --by."""
import csv
import io
import json
from pathlib import Path

import pytest
import torch

from act.commands.cli import main
from act.commands.report import report
from act.config import dump_yaml, load_config
from act.errors import ActError
from act.run import plots
from act.run.provenance import entry

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
START = entry("start", torch.device("cpu"))


def a_run(folder: Path, rtm_mean: float, *overrides: str, hosts=(), epochs=(150, 50),
          base: str = "cifar100n/sym20.yaml") -> Path:
    """A finished run folder of configs/`base` (CIFAR-100N sym-20): its config with `overrides`, a
    summary, metrics of `epochs` = (epochs, warm-up epochs), and one provenance entry per host of
    `hosts` (none: no file)."""
    folder.mkdir(parents=True)
    total, warmup = epochs
    cfg = load_config(CONFIGS / base, ["data.root=/x", f"optim.epochs={total}",
                                                         f"optim.warmup_epochs={warmup}", *overrides])
    (folder / "config.yaml").write_text(dump_yaml(cfg))
    stats = {"last10_mean": rtm_mean, "last10_std": 0.5, "best": rtm_mean + 1, "final": rtm_mean}
    (folder / "summary.json").write_text(json.dumps({"rtm": stats, "ntm": stats, "epochs": total,
                                                     "selection": {"precision": 90.0, "recall": 80.0, "f1": 85.0}}))
    (folder / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": e, "phase": "warmup" if e < warmup else "robust", "rtm_test_acc": rtm_mean}) + "\n"
        for e in range(total)))
    if hosts:
        entries = [dict(START, kind="start" if i == 0 else "resume", host=host) for i, host in enumerate(hosts)]
        (folder / "provenance.json").write_text(json.dumps(entries))
    return folder


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# ---- results as data ----

def test_csv_rows_hold_data_set_noise_method_switches_and_seeds_beside_the_labels(tmp_path):
    a_run(tmp_path / "a", 64.0, "run.seed=1")
    a_run(tmp_path / "b", 66.0, "run.seed=2")
    a_run(tmp_path / "c", 58.0, "method.ablation.mining=false", "optim.lr=0.02")
    table = rows(report([str(tmp_path)], fmt="csv"))
    assert list(table[0])[:10] == ["setting", "variant", "data", "noise_type", "closeset_ratio", "openset_ratio",
                                   "method", "switches", "n", "seeds"]
    act, ablated = table
    assert (act["variant"], ablated["variant"].split(" [")[0]) == ("ACT", "ACT w/o ASM")
    assert [act[k] for k in ("data", "noise_type", "closeset_ratio", "openset_ratio", "method")] == \
        ["cifar100n", "symmetric", "0.2", "0.0", "act"]
    assert (act["switches"], act["seeds"], act["n"]) == ("", "1;2", "2")
    assert ablated["switches"] == "method.ablation.mining=false;optim.lr=0.02"
    assert (act["rtm_last10_mean"], act["paper"]) == ("65.0", "65.51")


def test_a_human_label_run_has_the_configs_noise_type_and_its_label_set_among_the_switches(tmp_path):
    a_run(tmp_path / "a", 70.0, base="cifar-n-human/cifar10n-worst.yaml")
    (row,) = rows(report([str(tmp_path)], fmt="csv"))
    assert (row["setting"], row["noise_type"]) == ("CIFAR-10N (human, worse_label)", "human")
    assert "data.noise.labels=worse_label" in row["switches"].split(";")


def test_json_rows_hold_the_switches_as_a_mapping_and_the_seeds_as_a_list(tmp_path):
    a_run(tmp_path / "a", 64.0, "run.seed=3")
    a_run(tmp_path / "b", 66.0, "run.seed=1")
    a_run(tmp_path / "c", 58.0, "method.ablation.mining=false", "model.name=resnet32")
    groups = json.loads(report([str(tmp_path)], fmt="json"))["groups"]
    assert [(g["seeds"], g["switches"]) for g in groups] == [
        ([1, 3], {}), ([0], {"model.name": "resnet32", "method.ablation.mining": False})]
    assert (groups[0]["data"], groups[0]["closeset_ratio"], groups[0]["method"]) == ("cifar100n", 0.2, "act")


def test_a_last10_mean_over_warmup_epochs_is_one_warning_per_group(tmp_path, capsys):
    a_run(tmp_path / "a", 30.0, "run.seed=0", epochs=(12, 10))
    a_run(tmp_path / "b", 31.0, "run.seed=1", epochs=(12, 10))
    a_run(tmp_path / "c", 30.0, "method.ablation.mining=false", epochs=(12, 10))
    table = rows(report([str(tmp_path)], fmt="csv"))
    warnings = capsys.readouterr().err.splitlines()
    assert [row["warmup_in_last10"] for row in table] == ["8", "8"]
    assert len(warnings) == 2
    assert warnings[0] == (f"act report: warning: {table[0]['setting']}, ACT: 8 of the 10 epochs its last-10 mean "
                           f"averages are warm-up epochs (optim.epochs=12, optim.warmup_epochs=10)")


def test_a_run_ten_epochs_past_its_warmup_is_not_warned(tmp_path, capsys):
    a_run(tmp_path / "a", 30.0, epochs=(20, 10))
    assert rows(report([str(tmp_path)], fmt="csv"))[0]["warmup_in_last10"] == "0"
    assert capsys.readouterr().err == ""


def test_the_curves_mark_the_end_of_warmup_red_where_the_last10_mean_averages_it():
    pytest.importorskip("matplotlib")
    history = [{"epoch": e, "phase": "warmup" if e < 10 else "robust", "rtm_test_acc": 50.0} for e in range(12)]
    accuracy = plots.draw_curves([history], "x").axes[0]
    line = next(line for line in accuracy.lines if line.get_label().startswith("end of warm-up"))
    assert line.get_label() == "end of warm-up: 8 of the 10 epochs averaged are warm-up"
    assert line.get_color() == "tab:red" and list(line.get_xdata()) == [9.5, 9.5]


# ---- provenance: --where and --by ----

def test_where_keeps_the_runs_of_a_provenance_value(tmp_path):
    a_run(tmp_path / "a", 60.0, "run.seed=0", hosts=["gpu1"])
    a_run(tmp_path / "b", 70.0, "run.seed=1", hosts=["gpu2"])
    group = json.loads(report([str(tmp_path)], fmt="json", where=["host=gpu2"]))["groups"][0]
    assert (group["seeds"], group["rtm_last10_mean"], group["runs"]) == ([1], 70.0, [str(tmp_path / "b")])


def test_where_given_twice_for_one_key_keeps_the_runs_of_either_value(tmp_path):
    for seed, host in enumerate(("gpu1", "gpu2", "gpu3")):
        a_run(tmp_path / host, 60.0, f"run.seed={seed}", hosts=[host])
    data = json.loads(report([str(tmp_path)], fmt="json", where=["host=gpu1", "host=gpu3"]))
    assert data["groups"][0]["seeds"] == [0, 2] and [r["host"] for r in data["runs"]] == ["gpu1", "gpu3"]


def test_by_splits_each_group_by_the_provenance_value(tmp_path):
    a_run(tmp_path / "a", 60.0, "run.seed=0", hosts=["gpu1"])
    a_run(tmp_path / "b", 70.0, "run.seed=1", hosts=["gpu2"])
    a_run(tmp_path / "c", 72.0, "run.seed=2", hosts=["gpu2"])
    groups = json.loads(report([str(tmp_path)], fmt="json", by="host"))["groups"]
    assert [(g["variant"], g["host"], g["seeds"]) for g in groups] == [
        ("ACT [host=gpu1]", "gpu1", [0]), ("ACT [host=gpu2]", "gpu2", [1, 2])]


def test_a_run_resumed_on_another_host_has_both_and_a_run_without_provenance_is_unknown(tmp_path):
    a_run(tmp_path / "a", 60.0, hosts=["gpu1", "gpu2", "gpu1"])
    a_run(tmp_path / "b", 60.0, "run.seed=1")
    runs = json.loads(report([str(tmp_path)], fmt="json"))["runs"]
    assert [r["host"] for r in runs] == ["gpu1,gpu2", "unknown"]


def test_where_a_version_without_its_local_label_matches_its_builds(tmp_path):
    a_run(tmp_path / "a", 60.0, hosts=["gpu1"])
    a_run(tmp_path / "b", 70.0, "run.seed=1", hosts=["gpu2"])
    for run, version in (("a", "2.14.1+cu130"), ("b", "2.14.10+cpu")):
        path = tmp_path / run / "provenance.json"
        path.write_text(json.dumps([dict(e, torch=version) for e in json.loads(path.read_text())]))
    runs = json.loads(report([str(tmp_path)], fmt="json", where=["torch=2.14.1"]))["runs"]
    assert [(r["host"], r["torch"]) for r in runs] == [("gpu1", "2.14.1+cu130")]


def test_the_runs_csv_names_where_each_run_came_from(tmp_path):
    a_run(tmp_path / "runs" / "a", 60.0, hosts=["gpu1"])
    report([str(tmp_path / "runs")], fmt="csv", out=tmp_path / "out")
    row = rows((tmp_path / "out" / "runs.csv").read_text())[0]
    assert (row["host"], row["torch"], row["cuda"], row["act"]) == ("gpu1", torch.__version__, "null", START["act"])


def test_an_unknown_provenance_key_is_refused_in_one_line_and_nothing_is_written(tmp_path, capsys):
    a_run(tmp_path / "runs" / "a", 60.0, hosts=["gpu1"])
    assert main(["report", str(tmp_path / "runs"), "--by", "gpu", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == ("act: error: --by gpu: not a provenance key; give one of act, commit, dirty, "
                                       "python, torch, cuda, cudnn, driver, device, host\n")
    assert not (tmp_path / "out").exists()


def test_where_without_a_value_is_refused_in_one_line(tmp_path):
    a_run(tmp_path / "a", 60.0, hosts=["gpu1"])
    with pytest.raises(ActError, match=r"^--where host: give KEY=VALUE, e.g. --where torch=2.14.1$"):
        report([str(tmp_path)], where=["host"])


def test_where_matching_no_run_names_the_values_the_runs_have(tmp_path, capsys):
    a_run(tmp_path / "a", 60.0, hosts=["gpu1"])
    a_run(tmp_path / "b", 60.0, "run.seed=1")
    assert main(["report", str(tmp_path), "--where", "host=gpu9"]) == 2
    assert capsys.readouterr().err == ("act: error: no run of the 2 found matches --where host=gpu9 (their host: "
                                       "gpu1, unknown)\n")


def test_a_run_whose_provenance_is_not_what_a_run_writes_is_broken(tmp_path):
    run = a_run(tmp_path / "a", 60.0, hosts=["gpu1"])
    (run / "provenance.json").write_text(json.dumps([{"kind": "start"}]))
    state = json.loads(report([str(tmp_path)], fmt="json"))["runs"][0]["state"]
    assert state == "broken: provenance.json does not hold what a run writes ('[0].time' is missing)"
