"""See before you spend (issue 28, item 4): `act train --print-config` and `act sweep --dry-run` print
the resolved configs and check the data roots and weights files, creating nothing; `act sweep` checks
every distinct data root and weights file before any cell launches, and names every problem."""
import os
from pathlib import Path

import yaml

from act.commands.cli import main
from act.config import load_config, to_dict
from tests.support.datafactory import write_image_folder

ROOT = Path(__file__).resolve().parent.parent
TABLE1 = ROOT / "configs" / "sweeps" / "cifar-table1.yaml"


def write_sweep(folder: Path, bases: list[str], seeds: str = "[0, 1]") -> Path:
    path = folder / "sweep.yaml"
    path.write_text(f"base: [{', '.join(str(ROOT / 'configs' / b) for b in bases)}]\ngrid:\n  run.seed: {seeds}\n")
    return path


def test_print_config_prints_the_config_a_run_folder_would_hold_and_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["optim.lr=0.05", f"run.out_dir={tmp_path / 'runs'}"]
    assert main(["train", "--print-config", *args]) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out) == to_dict(load_config(None, args))
    assert out.splitlines()[-1] == "# preflight: ok (nothing to read from the disk)"
    assert os.listdir(tmp_path) == []


def test_print_config_refuses_a_missing_data_root_in_one_line_and_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--print-config", "--config", str(ROOT / "configs/cifar100n/sym20.yaml"),
                 f"data.root={tmp_path / 'cifar'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"act: error: data.root={tmp_path / 'cifar'}: no cifar-100-python/ folder")
    assert err.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_print_config_finds_a_cifar_archive_without_reading_it(tmp_path, capsys):
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"not read by the preflight")
    assert main(["train", "--print-config", "data.name=cifar100n", f"data.root={tmp_path}"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"# preflight: ok: found data.root={tmp_path} (cifar100n)"


def human_labels_args(data: Path, noise_file: Path) -> list[str]:
    """`act train --print-config` of CIFAR-10N's worst human labels, its CIFAR archive in place (not read)."""
    data.mkdir(exist_ok=True)
    (data / "cifar-10-python.tar.gz").write_bytes(b"not read by the preflight")
    return ["train", "--print-config", "data.name=cifar10n", f"data.root={data}", "data.noise.type=human",
            "data.noise.closeset_ratio=0", "data.noise.labels=worst", f"data.noise.file={noise_file}"]


def test_print_config_refuses_a_missing_human_label_file_in_one_line_and_creates_nothing(tmp_path, capsys,
                                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(human_labels_args(tmp_path / "data", tmp_path / "CIFAR-10_human.pt")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"act: error: data.noise.file={tmp_path / 'CIFAR-10_human.pt'}: no such file")
    assert err.count("\n") == 1
    assert os.listdir(tmp_path) == ["data"]


def test_print_config_refuses_a_label_folder_without_the_file_under_its_published_name(tmp_path, capsys):
    (tmp_path / "cifar-n").mkdir()
    (tmp_path / "cifar-n" / "CIFAR-10_human.npy").write_bytes(b"the TensorFlow file, not the one act reads")
    assert main(human_labels_args(tmp_path / "data", tmp_path / "cifar-n")) == 2
    assert f"data.noise.file={tmp_path / 'cifar-n' / 'CIFAR-10_human.pt'}: no such file" in capsys.readouterr().err


def test_print_config_finds_the_human_label_file_in_its_folder_without_reading_it(tmp_path, capsys):
    (tmp_path / "cifar-n").mkdir()
    (tmp_path / "cifar-n" / "CIFAR-10_human.pt").write_bytes(b"not read by the preflight")
    assert main(human_labels_args(tmp_path / "data", tmp_path / "cifar-n")) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"# preflight: ok: found data.root={tmp_path / 'data'} (cifar10n), data.noise.file={tmp_path / 'cifar-n'}")


def test_print_config_refuses_an_image_folder_without_its_val_split(tmp_path, capsys):
    root = write_image_folder(str(tmp_path / "aircraft"), ["a", "b"], per_class=1, size=8, splits=("train",))
    assert main(["train", "--print-config", "--config", str(ROOT / "configs/web/aircraft.yaml"),
                 f"data.root={root}", "model.pretrained=none"]) == 2
    assert f"{os.path.join(root, 'val')}: folder not found" in capsys.readouterr().err


def test_print_config_refuses_a_missing_weights_file(tmp_path, capsys):
    root = write_image_folder(str(tmp_path / "aircraft"), ["a", "b"], per_class=1, size=8)
    assert main(["train", "--print-config", "--config", str(ROOT / "configs/web/aircraft.yaml"),
                 f"data.root={root}", f"model.pretrained={tmp_path / 'resnet50.pth'}"]) == 2
    assert f"model.pretrained={tmp_path / 'resnet50.pth'}: no such file" in capsys.readouterr().err


def test_a_sweep_with_a_wrong_data_root_is_refused_in_one_line_before_its_folder_exists(tmp_path, capsys):
    out = tmp_path / "table1"
    assert main(["sweep", str(TABLE1), "--out", str(out), f"data.root={tmp_path / 'wrong'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # the 6 settings x 5 seeds share one data root: one problem, one line
    assert f"data.root={tmp_path / 'wrong'}: no cifar-100-python/ folder" in err
    assert "(cells cifar100n-sym20-seed0, cifar100n-sym20-seed1, cifar100n-sym20-seed2 and 27 more)" in err
    assert not out.exists()


def test_a_sweep_names_every_problem_before_refusing(tmp_path, capsys):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"base:\n  - {ROOT / 'configs/cifar100n/sym20.yaml'}\n"
                     f"  - {{config: {ROOT / 'configs/web/aircraft.yaml'}, set: {{data.root: {tmp_path / 'air'}, "
                     f"model.pretrained: {tmp_path / 'w.pth'}}}}}\n")
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out), f"data.root={tmp_path / 'cifar'}"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(line.startswith("act: error: ") for line in lines)
    assert [line.removeprefix("act: error: ").split("=")[0] for line in lines] == ["data.root", "data.root",
                                                                                   "model.pretrained"]
    assert not out.exists()


def test_sweep_dry_run_prints_every_cells_config_and_creates_nothing(tmp_path, capsys):
    (tmp_path / "cifar-100-python").mkdir()
    (tmp_path / "cifar-100-python" / "meta").write_bytes(b"")
    out = tmp_path / "table1"
    assert main(["sweep", str(TABLE1), "--out", str(out), "--dry-run", f"data.root={tmp_path}"]) == 0
    text = capsys.readouterr().out
    shown = yaml.safe_load(text)
    assert len(shown["cells"]) == 30
    assert shown["cells"]["cifar80n-asym40-seed4"] == {
        "data.name": "cifar80n", "data.noise.type": "asymmetric", "data.noise.closeset_ratio": 0.4,
        "data.noise.openset_ratio": 0.2, "run.seed": 4}
    assert shown["shared"]["model"]["name"] == "sevencnn" and shown["shared"]["data"]["root"] == str(tmp_path)
    assert text.splitlines()[-1].startswith("# preflight: ok: found data.root=")
    assert not out.exists()


def test_act_version_names_acts_version(capsys):
    import act

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith(f"act {act.__version__}")


def test_a_sweep_of_pretrained_settings_without_weights_is_refused_once_naming_its_cells(tmp_path, capsys):
    out = tmp_path / "web"
    assert main(["sweep", str(ROOT / "configs" / "sweeps" / "web-food.yaml"), "--out", str(out),
                 f"data.root={tmp_path}"]) == 2
    err = capsys.readouterr().err
    unset = [line for line in err.splitlines() if "model.pretrained is unset" in line]
    assert len(unset) == 4 and all(" (cells " in line or " (cell " in line for line in unset), err
    assert not out.exists()
