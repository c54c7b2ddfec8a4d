"""No silent base (issue 28, item 3): `act train key=value` builds on the embedded demo and says so in
the run's first line, naming the shipped config of a published data set; `--help` shows both bases."""
from pathlib import Path

import pytest

from act.commands.cli import main

ROOT = Path(__file__).resolve().parent.parent
TINY = ["optim.epochs=1", "optim.warmup_epochs=1", "optim.lr_decay=constant", "data.train_limit=100",
        "data.test_limit=50", "run.progress=false", "run.plots=false", "run.threads=1"]


def test_a_run_without_config_names_the_demo_in_its_first_line(tmp_path, capsys):
    assert main(["train", f"run.out_dir={tmp_path}", *TINY]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "act train: config = the embedded demo (digits, tinycnn, CPU, 40 epochs) and 9 overrides"
    assert lines[1].startswith("act | data digits")  # the demo's own console follows, as before


def test_a_published_data_set_on_the_demo_names_its_shipped_config_first(tmp_path, capsys):
    assert main(["train", "data.name=cifar100n", f"data.root={tmp_path / 'cifar'}", f"run.out_dir={tmp_path}"]) == 2
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("act train: config = the embedded demo (digits, tinycnn, CPU, 40 epochs)")
    assert first.endswith("; for CIFAR100N use --config configs/cifar100n/sym20.yaml")
    assert (ROOT / "configs/cifar100n/sym20.yaml").is_file()


def test_a_run_with_config_names_the_file_first(tmp_path, capsys):
    config = str(ROOT / "configs/cifar100n/sym20.yaml")
    assert main(["train", "--config", config, f"data.root={tmp_path / 'cifar'}", f"run.out_dir={tmp_path}"]) == 2
    assert capsys.readouterr().out.splitlines()[0] == f"act train: config = {config} and 2 overrides"


def test_train_help_shows_the_default_and_the_demos_value_of_a_key(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "model.name = 'sevencnn' [demo: 'tinycnn']" in out and "optim.epochs = 150 [demo: 40]" in out
    assert "method.tau = 0.025  " in out or "method.tau = 0.025\n" in out  # a key the demo leaves as it is
