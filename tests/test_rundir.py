"""A run folder (act/run/folder.py `RunFolder`): its files read typed, a file of another type refused in
one line naming it, the lock held for the run's life and released once."""
import json
import shutil

import numpy as np
import pytest

from act.commands.cli import main
from act.run.state import is_locked
from act.config import Config, dump_yaml, load_config
from act.errors import ActError
from act.run import folder as rundir
from act.run import loop as training
from act.run.folder import RunFileError, RunFolder, taken

TINY = ["optim.epochs=2", "optim.warmup_epochs=1", "optim.lr_decay=constant", "data.train_limit=200",
        "data.test_limit=100", "run.progress=false", "run.threads=1", "run.plots=false"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished two-epoch digits run."""
    out = tmp_path_factory.mktemp("rundir")
    training.train(load_config(None, [f"run.out_dir={out}", "run.name=r", *TINY]))
    return out / "r"


def copy_of(run, tmp_path):
    shutil.copytree(run, tmp_path / "r", ignore=shutil.ignore_patterns(rundir.LOCK))
    return RunFolder(tmp_path / "r")


def test_the_files_of_a_finished_run_are_read_typed(tiny_run):
    folder = RunFolder(tiny_run)
    cfg = folder.config()
    assert isinstance(cfg, Config) and cfg.optim.epochs == 2 and cfg.run.name == "r"
    noisy, true = folder.labels()
    assert noisy.dtype.kind in "iu" and noisy.shape == true.shape == (200,)
    assert [r["epoch"] for r in folder.metrics()] == [0, 1]
    assert folder.summary()["epochs"] == 2
    assert folder.checkpoint()["epoch"] == 1
    bank = folder.bank()
    assert bank.ema.shape == (200, 10) and bank.robust_epochs == 1 and bank.classes == 10


def test_a_config_without_a_key_reads_as_the_typed_default(tmp_path):
    folder = RunFolder(tmp_path)
    (tmp_path / rundir.CONFIG).write_text("data:\n  name: digits\n")
    cfg = folder.config()
    assert cfg.method.name == Config().method.name == "act" and cfg.data.name == "digits"


def test_files_not_yet_written_read_as_none_or_empty(tmp_path):
    folder = RunFolder(tmp_path)
    assert folder.metrics() == [] and folder.summary() is None and folder.bank() is None
    assert folder.checkpoint() is None


def wrong(name, text=None, **arrays):
    def plant(folder):
        if text is not None:
            (folder / name).write_text(text)
        else:
            np.savez(folder / name, **arrays)
    return plant


@pytest.mark.parametrize("plant,read,why", [
    (wrong("config.yaml", "run:\n  seed: zero\n"), RunFolder.config, "config.yaml: run.seed must be an integer"),
    (wrong("labels.npz", noisy=np.zeros(3), true=np.zeros(3, int)), RunFolder.labels,
     "labels.npz does not hold what a run writes ('noisy' is a 1-d array of float64, not a 1-d array of integers)"),
    (wrong("bank.npz", ema=np.zeros(3), selected=np.zeros(3, int), robust_epochs=1), RunFolder.bank,
     "bank.npz does not hold what a run writes ('ema' is a 1-d array"),
    (wrong("metrics.jsonl", '{"epoch": 0}\n[1, 2]\n'), RunFolder.metrics, "metrics.jsonl line 2 is not an epoch's record"),
    (wrong("summary.json", "[]"), RunFolder.summary, "summary.json does not hold a mapping"),
], ids=["config", "labels", "bank", "metrics", "summary"])
def test_a_file_of_another_type_is_refused_naming_it(tmp_path, plant, read, why):
    folder = RunFolder(tmp_path)
    plant(folder.path)
    with pytest.raises(RunFileError) as caught:
        read(folder)
    assert caught.value.why.startswith(why)
    assert str(caught.value).startswith(str(tmp_path / why.split(" ")[0].rstrip(":")))


@pytest.mark.parametrize("record", ["[1, 2]", '"act"', "not json"])
def test_a_checkpoint_whose_config_record_is_not_a_mapping_is_refused_in_one_line(tiny_run, tmp_path, capsys, record):
    from act.run import checkpoint

    folder = copy_of(tiny_run, tmp_path)
    state = checkpoint.load(folder / rundir.CHECKPOINT)
    state["config"] = record
    checkpoint.save(folder / rundir.CHECKPOINT, state)
    why = "checkpoint.pt holds a config record that is not the JSON of a mapping"
    with pytest.raises(RunFileError) as caught:
        folder.checkpoint()
    assert caught.value.why.startswith(why) and str(caught.value).startswith(str(folder / rundir.CHECKPOINT))
    assert main(["train", "--resume", str(folder.path), "optim.epochs=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{folder / rundir.CHECKPOINT} holds a config record" in err


def test_a_file_that_is_a_folder_is_refused_not_read(tmp_path):
    (tmp_path / rundir.SUMMARY).mkdir()
    with pytest.raises(RunFileError, match="summary.json is not a regular file"):
        RunFolder(tmp_path).summary()


def test_writes_are_strict_json_and_read_back(tmp_path):
    folder = RunFolder(tmp_path)
    folder.write_metrics([{"epoch": 0, "rtm_loss": float("nan")}])
    assert folder.metrics() == [{"epoch": 0, "rtm_loss": None}]
    assert "NaN" not in (folder / rundir.METRICS).read_text()


def test_create_locks_a_new_folder_with_the_config_and_labels_until_held_ends(tmp_path):
    cfg = load_config(None, [f"run.out_dir={tmp_path}", "run.name=new"])
    noisy, true = np.array([1, 0, 2]), np.array([1, 1, 2])
    folder = RunFolder.create(cfg, noisy, true, {"actual_rate": 1 / 3})
    assert folder.path == tmp_path / "new" and is_locked(folder.path)
    assert folder.config() == cfg
    assert all(np.array_equal(a, b) for a, b in zip(folder.labels(), (noisy, true)))
    assert json.loads((folder / rundir.NOISE).read_text()) == {"actual_rate": 1 / 3}
    with folder.held(taken):
        assert is_locked(folder.path)
    assert not is_locked(folder.path)


def count_releases(monkeypatch) -> list:
    released = []
    real = rundir.RunLock.release

    def release(lock):
        released.append(lock.path.parent)
        real(lock)

    monkeypatch.setattr(rundir.RunLock, "release", release)
    return released


def test_a_new_run_holds_its_lock_for_its_life_and_releases_it_once(tmp_path, monkeypatch):
    released, seen = count_releases(monkeypatch), []
    real_loop = training.loop

    def loop(run, out):
        seen.append(is_locked(run.dir))
        return real_loop(run, out)

    monkeypatch.setattr(training, "loop", loop)
    training.train(load_config(None, [f"run.out_dir={tmp_path}", "run.name=r", *TINY]))
    assert seen == [True] and released == [tmp_path / "r"] and not is_locked(tmp_path / "r")


def test_a_resume_that_fails_still_releases_its_lock_once(tiny_run, tmp_path, monkeypatch):
    folder = copy_of(tiny_run, tmp_path)
    released = count_releases(monkeypatch)
    (folder / rundir.CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(ActError, match="not an act checkpoint"):
        training.resume(folder.path)
    assert released == [folder.path] and not is_locked(folder.path)


def test_taking_the_lock_removes_the_temp_files_a_killed_writer_left(tiny_run, tmp_path):
    folder = copy_of(tiny_run, tmp_path)
    left = folder / ".checkpoint.pt.act-0123abcd.tmp"
    left.write_bytes(b"half a checkpoint")
    user = folder / "notes.tmp"
    user.write_text("mine")
    with folder.held():
        assert not left.exists() and user.exists()


def test_a_resume_refuses_labels_of_another_type_as_act_issues_does(tiny_run, tmp_path, capsys):
    folder = copy_of(tiny_run, tmp_path)
    noisy, true = folder.labels()
    np.savez(folder / rundir.LABELS, noisy=noisy.astype(float), true=true)  # the same values, as floats
    why = "labels.npz does not hold what a run writes ('noisy' is a 1-d array of float64"
    assert main(["train", "--resume", str(folder.path), "optim.epochs=3"]) == 2
    assert why in capsys.readouterr().err
    assert main(["issues", str(folder.path)]) == 2
    assert why in capsys.readouterr().err


def test_act_issues_reads_a_config_without_a_method_section_as_act(tiny_run, tmp_path, capsys):
    folder = copy_of(tiny_run, tmp_path)
    text = dump_yaml(folder.config())
    start = text.index("method:\n")
    end = text.index("\n", text.index("fuse_views", start)) + 1
    (folder / rundir.CONFIG).write_text(text[:start] + text[end:])
    assert "method:" not in (folder / rundir.CONFIG).read_text()
    assert main(["issues", str(folder.path)]) == 0
    assert "training labels judged wrong" in capsys.readouterr().out
