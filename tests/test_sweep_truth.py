"""Sweeps that tell the truth (issue 29): a cell is its config, not its name; cells are counted
before they are built; DIR/packs/plan.json is checked and rebuilt; each refusal is one line about
its cause. None of these tests trains a run."""
import json
from pathlib import Path

import pytest
import yaml

from act.commands.cli import main
from act.commands.sweep import Packer
from act.errors import ActError
from act.sweep import spec
from act.sweep.spec import RECORD, adopt_names, check_cells, open_folder, read_sweep
from act.sweep.state import CellState

ROOT = Path(__file__).resolve().parent.parent
DEMO = str(ROOT / "configs" / "demo.yaml")


def write_sweep(folder: Path, grid: dict, **more) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": DEMO, "grid": grid, **more}, sort_keys=False))
    return path


def refusal(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("grid, given", [({"run.seed": ["1", "01"]}, "run.seed='01'"),
                                         ({"data.noise.closeset_ratio": ["0.2", "0.2 "]}, "closeset_ratio='0.2 '")])
def test_two_cells_of_one_config_are_refused_naming_both_before_anything_exists(tmp_path, capsys, grid, given):
    err = refusal(capsys, "sweep", str(write_sweep(tmp_path, grid)), "--out", str(tmp_path / "out"))
    assert "would train the same config" in err and given in err
    assert not (tmp_path / "out").exists()


SEEDS = {"run.seed": ["1", "2"]}


@pytest.mark.parametrize("more, where", [({"grid": {**SEEDS, "v": {"a": {"run.seed": "5"}}}}, "grid.v.a"),
                                         ({"grid": SEEDS, "set": {"run.seed": "5"}}, "set"),
                                         ({"grid": SEEDS, "base": [{"config": DEMO, "set": {"run.seed": "5"}}]},
                                          "the set of base")])
def test_setting_the_key_an_axis_names_its_cells_after_is_refused_in_one_line(tmp_path, capsys, more, where):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": DEMO, **more}, sort_keys=False))
    err = refusal(capsys, "sweep", str(path), "--out", str(tmp_path / "out"))
    assert f"{where}" in err and "sets run.seed, which grid axis run.seed names its cells after" in err


def test_a_cell_is_named_by_the_value_its_config_holds(tmp_path):
    sweep = read_sweep(write_sweep(tmp_path, {"run.seed": ["01"], "optim.lr": ["1e-3"]}), [])
    assert [cell.name for cell in sweep.cells] == ["demo-seed1-lr0.001"]


def test_noise_axes_name_a_cell_by_one_noise_tag(tmp_path):
    grid = {"data.noise.closeset_ratio": ["0.2", "0.4"], "run.seed": ["0"],
            "data.noise.type": ["symmetric", "asymmetric"]}
    names = [cell.name for cell in read_sweep(write_sweep(tmp_path, grid), []).cells]
    assert names == ["demo-sym20-seed0", "demo-asym20-seed0", "demo-sym40-seed0", "demo-asym40-seed0"]


def test_grid_values_that_clash_in_a_name_are_told_apart_not_sent_to_name_the_bases(tmp_path, capsys):
    path = write_sweep(tmp_path, {"v": {"a b": {"run.seed": "5"}, "a_b": {"run.seed": "6"}}})
    err = refusal(capsys, "sweep", str(path), "--out", str(tmp_path / "out"))
    assert "would both be named demo-a_b" in err and "v='a b'" in err and "name the bases" not in err


def test_a_sweep_folder_begun_under_other_cell_names_is_continued_under_them(tmp_path):
    """A record written by an act that named cells otherwise (demo-closeset_ratio0.2) holds the same
    configs: a rerun keeps its names, so its run folders are found."""
    sweep = read_sweep(write_sweep(tmp_path, {"data.noise.closeset_ratio": ["0.2", "0.4"]}), [])
    out = tmp_path / "out"
    open_folder(out, sweep, check_cells(sweep, out / "runs", machine=False)).release()
    record = yaml.safe_load((out / RECORD).read_text())
    record["cells"] = {name.replace("sym", "closeset_ratio0.").replace("0.20", "0.2").replace("0.40", "0.4"): cell
                       for name, cell in record["cells"].items()}
    (out / RECORD).write_text(yaml.safe_dump(record))
    renamed, configs = adopt_names(out, sweep, check_cells(sweep, out / "runs", machine=False))
    assert [cell.name for cell in renamed.cells] == ["demo-closeset_ratio0.2", "demo-closeset_ratio0.4"]
    assert configs["demo-closeset_ratio0.2"].run.name == "demo-closeset_ratio0.2"
    open_folder(out, renamed, configs).release()  # the record's own sweep: accepted


def test_a_sweep_above_the_cell_limit_is_refused_before_any_config_is_built(tmp_path, capsys, monkeypatch):
    def built(*args, **kwargs):
        raise AssertionError("a config was built")

    monkeypatch.setattr(spec, "load_config", built)
    grid = {key: [str(v) for v in range(10)] for key in ("run.seed", "data.noise.seed", "optim.batch_size",
                                                          "optim.lr", "optim.lr1", "optim.momentum")}
    err = refusal(capsys, "sweep", str(write_sweep(tmp_path, grid)), "--out", str(tmp_path / "out"))
    assert "makes 1000000 cells" in err and "--max-cells 1000000" in err
    assert not (tmp_path / "out").exists()


def test_max_cells_allows_a_larger_sweep(tmp_path):
    path = write_sweep(tmp_path, {"run.seed": ["0", "1", "2"]})
    with pytest.raises(ActError, match="makes 3 cells"):
        read_sweep(path, [], max_cells=2)
    assert len(read_sweep(path, [], max_cells=3).cells) == 3


def test_validating_a_large_sweep_says_how_it_goes(tmp_path, capsys):
    path = write_sweep(tmp_path, {"optim.lr": ["0.01", "-1"], "run.seed": [str(s) for s in range(110)]})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    out = capsys.readouterr()
    assert out.out.splitlines()[0] == "validating 220 cells"
    assert "cell demo-lr-1-seed0:" in out.err


@pytest.mark.parametrize("plan", ["[1, 2]", '{"demo-seed0": 5}', "{not json"])
def test_status_reads_a_plan_of_another_shape_as_no_plan(tmp_path, capsys, plan):
    sweep = read_sweep(write_sweep(tmp_path, {"run.seed": ["0", "1"]}), [])
    out = tmp_path / "out"
    open_folder(out, sweep, check_cells(sweep, out / "runs", machine=False)).release()
    (out / "packs").mkdir()
    (out / "packs" / "plan.json").write_text(plan)
    assert main(["sweep", "--status", str(out)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].split() == ["cell", "RTM", "last-10", "pack", "state"] and len(rows) == 4


def test_a_pack_rerun_with_nothing_to_run_keeps_each_cells_pack(tmp_path):
    sweep = read_sweep(write_sweep(tmp_path, {"run.seed": ["0", "1"]}), [])
    configs = check_cells(sweep, tmp_path / "out" / "runs", machine=False)
    names = [cell.name for cell in sweep.cells]
    states = {name: CellState("finished", "finished", 3, 3, 9.0, pack=f"{names[0]}+1") for name in names}
    assert Packer(configs, 2, tmp_path / "out").jobs([], states) == []
    plan = json.loads((tmp_path / "out" / "packs" / "plan.json").read_text())
    assert plan == {name: f"pack {names[0]}+1" for name in names}


@pytest.mark.parametrize("record, why", [("cells: {a: [1\n  b: 2\n", "is not valid YAML at line 2"),
                                         ("", "(it is empty)"), ("cells: {}\n", "('sweep' is missing)")])
def test_a_sweep_record_that_is_not_acts_is_one_line_naming_what_is_wrong(tmp_path, capsys, record, why):
    (tmp_path / RECORD).write_text(record)
    err = refusal(capsys, "sweep", "--status", str(tmp_path))
    assert why in err and "None" not in err


def test_a_file_given_as_out_is_told_to_be_a_file(tmp_path, capsys):
    (tmp_path / "out").write_text("")
    err = refusal(capsys, "sweep", str(write_sweep(tmp_path, {"run.seed": ["0"]})), "--out", str(tmp_path / "out"))
    assert err.endswith(f"--out {tmp_path / 'out'} is a file; give a folder (a new one, or one of this sweep's)")



@pytest.mark.parametrize("noise, tag", [({"type": "symmetric", "closeset_ratio": 0.2, "openset_ratio": 0.0}, "sym20"),
                                        ({"type": "asymmetric", "closeset_ratio": 0.4, "openset_ratio": 0.2},
                                         "asym40-open20"),
                                        ({"type": "none", "closeset_ratio": 0.4, "openset_ratio": 0.0}, "clean"),
                                        ({"type": "symmetric", "closeset_ratio": 0.125, "openset_ratio": 0.0},
                                         "sym12.5")])
def test_a_noise_setting_has_one_tag(noise, tag):
    from act.run.titles import noise_tag

    assert noise_tag(noise) == tag


def test_a_run_folder_and_a_report_row_spell_the_noise_as_its_tag(tmp_path):
    from act.config import load_config
    from act.run.folder import new_run_dir, release
    from act.run.titles import setting_label

    folder = new_run_dir(load_config(None, ["data.noise.closeset_ratio=0.2", f"run.out_dir={tmp_path}"]))
    release(folder)
    assert folder.name.startswith("digits-sym20-act-")
    assert setting_label(("digits", "symmetric", 0.2, 0.0)) == "digits sym20"
