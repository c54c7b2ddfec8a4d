"""The `act` command under abuse: a closed pipe, a path that cannot be written, Ctrl-C during a
conversion. Each ends with its work done or one line on stderr, never a traceback."""
import os
import subprocess
import sys
from pathlib import Path

from act.commands.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_training_piped_into_head_finishes_the_run(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    train = subprocess.Popen([sys.executable, "-m", "act", "train", "--config", str(ROOT / "configs" / "demo.yaml"),
                              "optim.epochs=2", "optim.warmup_epochs=1", f"run.out_dir={tmp_path}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    head = subprocess.run(["head", "-1"], stdin=train.stdout, capture_output=True, text=True)
    train.stdout.close()
    err = train.stderr.read().decode()
    assert train.wait(timeout=300) == 0, err
    assert head.stdout.startswith("act train: config = ") and "Traceback" not in err  # the run's first line
    assert [p.name for p in tmp_path.glob("*/summary.json")] == ["summary.json"]


def test_a_file_given_as_run_out_dir_is_one_line_naming_it(tmp_path, capsys):
    blocker = tmp_path / "runs"
    blocker.write_text("a file, not a folder")
    assert main(["train", "optim.epochs=1", "optim.warmup_epochs=1", f"run.out_dir={blocker}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("act: error: ") and str(blocker) in err and err.count("\n") == 1
    assert blocker.read_text() == "a file, not a folder"


def test_ctrl_c_during_a_conversion_does_not_speak_of_checkpoints(tmp_path, capsys, monkeypatch):
    import act.commands.convert

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(act.commands.convert, "convert", interrupted)
    out = tmp_path / "out"
    assert main(["convert", "--format", "dali", "--out", str(out), "data.name=folder", f"data.root={tmp_path}"]) == 130
    err = capsys.readouterr().err
    assert "checkpoint" not in err and f"{out} is as it was" in err



def write_npz(path, size):
    import numpy as np

    rs = np.random.RandomState(0)
    np.savez(path, x=rs.randint(0, 256, (8, size, size, 3), dtype=np.uint8), y=np.arange(8) % 2,
             x_test=rs.randint(0, 256, (4, size, size, 3), dtype=np.uint8), y_test=np.arange(4) % 2)
    return path


def test_an_image_size_other_than_the_arrays_own_is_one_line(tmp_path, capsys):
    npz = write_npz(tmp_path / "set.npz", 32)
    assert main(["train", "data.name=arrays", f"data.root={npz}", "model.name=sevencnn", "data.image_size=64",
                 "data.noise.type=none", "optim.epochs=1", "optim.warmup_epochs=1", f"run.out_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "data.image_size=64: arrays holds 32x32 arrays" in err and err.count("\n") == 1


def test_images_too_small_for_sevencnn_are_one_line_naming_the_key(tmp_path, capsys):
    npz = write_npz(tmp_path / "set.npz", 4)
    assert main(["train", "data.name=arrays", f"data.root={npz}", "model.name=sevencnn", "data.noise.type=none",
                 "optim.epochs=1", "optim.warmup_epochs=1", f"run.out_dir={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err
    assert "data.image_size: sevencnn needs images of at least 8 px" in err and err.count("\n") == 1
