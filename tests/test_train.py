"""End-to-end runs on the CPU: each method, the run folder, resume exactness, refusals."""
import errno
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from act.commands.cli import main
from act.config import load_config
from act.errors import ActError
from act.run import checkpoint, console
from act.run import loop as training
from act.run.folder import to_json
from act.run.state import read_run

TIMING_KEYS = {"epoch_seconds", "train_seconds", "images_per_s"}
REQUIRED = {"epoch", "phase", "lr", "lr1", "rtm_test_acc", "ntm_test_acc", "sel_precision", "sel_recall",
            "sel_f1", "selected_frac", "mining", "epoch_seconds", "samples_seen"}


def quick(tmp_path, *extra):
    """A few-epoch digits run: 2 warm-up epochs, then the robust phase."""
    return load_config(None, [f"run.out_dir={tmp_path}", "optim.epochs=4", "optim.warmup_epochs=2",
                              "optim.lr_decay=cosine:2,5e-4,4", "data.train_limit=600", "data.test_limit=200",
                              "run.progress=false", "run.threads=1", *extra])


def read_metrics(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def without_timings(records):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def only_run(tmp_path):
    runs = [p for p in Path(tmp_path).iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def test_an_act_run_writes_its_folder(tmp_path):
    summary = training.train(quick(tmp_path, "run.name=r"))
    run = tmp_path / "r"
    for name in ("config.yaml", "labels.npz", "noise.json", "metrics.jsonl", "checkpoint.pt", "summary.json"):
        assert (run / name).is_file(), name
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    assert [r["phase"] for r in records] == ["warmup", "warmup", "robust", "robust"]
    assert REQUIRED <= set(records[0])
    assert all(r["samples_seen"] == 600 for r in records)
    assert records[0]["selected_frac"] == 1.0 and records[-1]["selected_frac"] < 1.0
    assert records[0]["mining"] is None and 0.0 <= records[-1]["mining"] <= 1.0
    assert all(0 <= r["rtm_test_acc"] <= 100 for r in records)
    labels = np.load(run / "labels.npz")
    assert (labels["noisy"] != labels["true"]).mean() == pytest.approx(json.loads((run / "noise.json").read_text())["actual_noise_rate"])
    saved = json.loads((run / "summary.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert set(saved["rtm"]) == {"last10_mean", "last10_std", "best", "final"}
    assert saved["rtm"]["final"] == records[-1]["rtm_test_acc"] and saved["epochs"] == 4
    assert saved["selection"]["precision"] == records[-1]["sel_precision"]


def test_selection_beats_the_noise_rate_after_warmup(tmp_path):
    """The selected set is cleaner than the data: the point of ACT."""
    training.train(quick(tmp_path, "data.train_limit=0", "optim.epochs=8", "optim.warmup_epochs=4",
                         "optim.lr_decay=cosine:4,5e-4,8"))
    records = read_metrics(only_run(tmp_path))
    clean = 100 * (1 - json.loads((only_run(tmp_path) / "noise.json").read_text())["actual_noise_rate"])
    assert records[-1]["sel_precision"] > clean + 15


def test_the_standard_method_trains_with_plain_cross_entropy(tmp_path):
    training.train(quick(tmp_path, "method.name=standard"))
    records = read_metrics(only_run(tmp_path))
    assert {r["phase"] for r in records} == {"standard"}
    assert all(r["selected_frac"] == 1.0 for r in records)


def test_ablations_run(tmp_path):
    training.train(quick(tmp_path, "method.ablation.mining=false", "method.ablation.reweight=false",
                         "method.ablation.consistency=false", "method.selection=web", "method.label_smoothing=0.35"))
    records = read_metrics(only_run(tmp_path))
    assert all(r["mining"] in (None, 0.0) for r in records)


def test_resume_after_a_kill_reproduces_the_uninterrupted_run(tmp_path):
    full = training.train(quick(tmp_path / "a", "run.name=full"))
    reference = read_metrics(tmp_path / "a" / "full")

    class Kill(Exception):
        pass

    original = checkpoint.save_run
    calls = {"n": 0}

    def kill_after_two_epochs(run, epoch):
        original(run, epoch)
        calls["n"] += 1
        if calls["n"] == 2:  # dies after epoch 1's checkpoint, before its metrics line is written
            raise Kill

    checkpoint.save_run = kill_after_two_epochs
    try:
        with pytest.raises(Kill):
            training.train(quick(tmp_path / "b", "run.name=cut"))
    finally:
        checkpoint.save_run = original
    cut = tmp_path / "b" / "cut"
    assert len(read_metrics(cut)) == 1  # the crash left the metrics one epoch behind the checkpoint
    resumed = training.resume(cut)
    assert without_timings(read_metrics(cut)) == without_timings(reference)
    state_a = checkpoint.load(tmp_path / "a" / "full" / "checkpoint.pt")
    state_b = checkpoint.load(cut / "checkpoint.pt")
    for key in ("rtm", "ntm"):
        for name, tensor in state_a[key].items():
            assert torch.equal(tensor, state_b[key][name]), (key, name)
    assert torch.equal(state_a["bank"]["ema"], state_b["bank"]["ema"])
    assert torch.equal(state_a["bank"]["count"], state_b["bank"]["count"])
    assert resumed["rtm"] == full["rtm"]
    assert resumed["noise"] == full["noise"] and resumed["noise"]["type"] == "symmetric"


def test_resume_may_extend_the_epochs_but_not_change_the_method(tmp_path):
    training.train(quick(tmp_path, "run.name=r", "optim.epochs=3"))
    with pytest.raises(ActError, match="method.tau cannot change when resuming"):
        training.resume(tmp_path / "r", ["method.tau=0.5"])
    training.resume(tmp_path / "r", ["optim.epochs=4"])
    assert [r["epoch"] for r in read_metrics(tmp_path / "r")] == [0, 1, 2, 3]


def test_an_existing_run_folder_is_never_overwritten(tmp_path):
    training.train(quick(tmp_path, "run.name=r", "optim.epochs=1"))
    before = (tmp_path / "r" / "metrics.jsonl").read_text()
    with pytest.raises(ActError, match="already holds a run; continue it with --resume"):
        training.train(quick(tmp_path, "run.name=r", "optim.epochs=1"))
    assert (tmp_path / "r" / "metrics.jsonl").read_text() == before


def test_two_unnamed_runs_get_two_folders(tmp_path):
    training.train(quick(tmp_path, "optim.epochs=1"))
    training.train(quick(tmp_path, "optim.epochs=1"))
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


def test_resume_of_a_folder_without_a_run_is_refused(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err


def test_a_cifar_run_reads_the_real_format(tmp_path):
    from support.datafactory import write_cifar

    root = write_cifar(tmp_path / "data", "cifar100", n_train=300, n_test=100, seed=0)
    cfg = load_config(Path(__file__).resolve().parent.parent / "configs" / "cifar80n" / "sym20.yaml",
                      [f"data.root={root}", f"run.out_dir={tmp_path / 'runs'}", "model.name=tinycnn",
                       "optim.epochs=2", "optim.warmup_epochs=1", "optim.lr_decay=cosine:1,5e-4,2",
                       "run.progress=false", "pipeline.workers=0", "run.device=cpu"])
    training.train(cfg)
    records = read_metrics(only_run(tmp_path / "runs"))
    assert [r["phase"] for r in records] == ["warmup", "robust"]
    assert records[0]["samples_seen"] == 300


def test_the_demo_command_runs_from_the_cli(tmp_path):
    """`python -m act train` with overrides: the same entry point the README gives."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    result = subprocess.run([sys.executable, "-m", "act", "train", f"run.out_dir={tmp_path}", "optim.epochs=2",
                             "data.train_limit=300", "run.threads=1"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "robust net (RTM) test accuracy" in result.stdout
    assert "40% symmetric noise" in result.stdout


def test_fused_views_train_both_views_in_one_rtm_forward(tmp_path):
    plain = training.train(quick(tmp_path / "a"))
    fused = training.train(quick(tmp_path / "b", "method.fuse_views=true"))
    # Warm-up is identical (one view); the robust phase differs only through batch-norm statistics.
    a, b = read_metrics(only_run(tmp_path / "a")), read_metrics(only_run(tmp_path / "b"))
    assert without_timings(a[:2]) == without_timings(b[:2])
    assert a[2]["rtm_loss"] != b[2]["rtm_loss"]
    assert fused["epochs"] == plain["epochs"] == 4


def test_compiled_steps_compile_once_per_phase(tmp_path, monkeypatch):
    """run.compile=true: a new epoch (new lr, new epoch tensor) never recompiles; the last,
    smaller batch takes the eager path."""
    import torch._dynamo

    torch._dynamo.reset()
    monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
    compiled = training.train(quick(tmp_path / "c", "run.compile=true", "data.train_limit=200", "optim.batch_size=64"))
    training.train(quick(tmp_path / "e", "run.compile=false", "data.train_limit=200", "optim.batch_size=64"))
    assert compiled["epochs"] == 4
    c, e = read_metrics(only_run(tmp_path / "c")), read_metrics(only_run(tmp_path / "e"))
    assert [r["samples_seen"] for r in c] == [200] * 4
    for rc, re in zip(c, e):  # same maths: compiled kernels round differently, so compare loosely
        assert abs(rc["rtm_train_acc"] - re["rtm_train_acc"]) < 10


def kill_at_epoch(monkeypatch, epoch, exc=None):
    """Make train_epoch raise `exc` (default Kill) when it reaches `epoch`."""
    original = training.train_epoch

    def train_epoch(run, e, progress):
        if e == epoch:
            raise (exc or Kill)()
        return original(run, e, progress)

    monkeypatch.setattr(training, "train_epoch", train_epoch)
    return original


class Kill(Exception):
    pass


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("act: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_a_one_sample_last_batch_sits_out_with_batch_norm_and_resume_skips_it_too(tmp_path, monkeypatch):
    """sevencnn (BatchNorm1d head), 129 samples, batch 128: the last batch of 1 cannot be batch-normalised."""
    args = ("model.name=sevencnn", "data.train_limit=129", "optim.batch_size=128", "optim.epochs=3",
            "optim.warmup_epochs=1", "optim.lr_decay=cosine:1,5e-4,3")
    training.train(quick(tmp_path / "a", "run.name=full", *args))
    reference = read_metrics(tmp_path / "a" / "full")
    assert [r["samples_seen"] for r in reference] == [128, 128, 128]
    original = kill_at_epoch(monkeypatch, 2)
    with pytest.raises(Kill):
        training.train(quick(tmp_path / "b", "run.name=cut", *args))
    monkeypatch.setattr(training, "train_epoch", original)
    training.resume(tmp_path / "b" / "cut")
    assert without_timings(read_metrics(tmp_path / "b" / "cut")) == without_timings(reference)


def test_a_training_set_of_one_sample_is_refused_for_batch_norm_models(tmp_path, capsys):
    assert main(["train", f"run.out_dir={tmp_path}", "data.train_limit=1", "optim.epochs=1", "run.threads=1"]) == 2
    assert "data.train_limit=1" in one_line_error(capsys)


def test_the_summary_prints_when_no_training_label_is_clean(tmp_path):
    """Recall is undefined (None) when every label is noisy; the summary says '-' instead of crashing."""
    from types import SimpleNamespace

    cfg = load_config(None, [f"run.out_dir={tmp_path}"])
    run = SimpleNamespace(cfg=cfg, dir=tmp_path, history=[{"phase": "robust"}])
    summary = {"noise": {"actual_noise_rate": 1.0}, "epochs": 1, "epoch_seconds_median": 0.1, "device": "cpu",
               "rtm": {"last10_mean": 5.0, "last10_std": 0.0, "best": 5.0}, "ntm": {"last10_mean": 5.0, "last10_std": 0.0},
               "selection": {"precision": 0.0, "recall": None, "f1": None}, "truncated_images": {"count": 0, "files": []}}
    out = io.StringIO()
    console.print_summary(run, summary, out)
    assert "precision 0.0 % (the training labels are 0.0 % clean), recall -" in out.getvalue()


@pytest.mark.parametrize("override", ["optim.lr=.nan", "optim.lr=inf", "optim.lr1=nan", "optim.warmup_lr=-inf",
                                      "optim.lr_decay=cosine:2,nan,4"])
def test_non_finite_learning_rates_are_refused(tmp_path, override):
    with pytest.raises(ActError, match=override.partition("=")[0]):
        load_config(None, [f"run.out_dir={tmp_path}", override])


def test_a_diverging_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    """Warm-up at a sane rate, then lr=1e30: the robust epoch's loss is NaN."""
    code = main(["train", f"run.out_dir={tmp_path}", "run.name=r", "optim.epochs=3", "optim.warmup_epochs=1",
                 "optim.lr_decay=constant", "optim.lr=1e30", "optim.lr1=1e30", "data.train_limit=300",
                 "data.test_limit=100", "run.progress=false", "run.threads=1"])
    assert code == 2
    err = one_line_error(capsys)
    assert "training diverged in epoch 1" in err and "the last good epoch, 0, is checkpointed" in err
    assert [r["epoch"] for r in read_metrics(tmp_path / "r")] == [0]
    assert checkpoint.load(tmp_path / "r" / "checkpoint.pt")["epoch"] == 0
    assert not (tmp_path / "r" / "summary.json").exists()
    # the folder says so, for act report and act sweep: not "stopped after 1 of 3 epochs"
    record = json.loads((tmp_path / "r" / "diverged.json").read_text())
    assert record["epoch"] == 1 and record["why"] in err
    assert read_run(tmp_path / "r").state == f"diverged: {record['why']} (diverged.json)"


def test_a_resume_of_a_diverged_run_tries_again_and_the_folder_tells_the_new_outcome(tmp_path, capsys):
    args = [f"run.out_dir={tmp_path}", "run.name=r", "optim.epochs=2", "optim.warmup_epochs=1",
            "optim.lr_decay=constant", "optim.lr=1e30", "optim.lr1=1e30", "data.train_limit=300",
            "data.test_limit=100", "run.progress=false", "run.threads=1"]
    assert main(["train", *args]) == 2
    (tmp_path / "r" / "diverged.json").write_text('{"epoch": 1, "why": "an earlier attempt"}')
    assert main(["train", "--resume", str(tmp_path / "r")]) == 2  # diverges again: written anew
    assert json.loads((tmp_path / "r" / "diverged.json").read_text())["why"].startswith("training diverged in epoch 1")
    assert main(["train", "--resume", str(tmp_path / "r"), "optim.epochs=1"]) == 0  # nothing left to diverge
    assert not (tmp_path / "r" / "diverged.json").exists()
    assert read_run(tmp_path / "r").state == "finished"


def test_metrics_are_strict_json_with_null_for_non_finite_values():
    line = to_json({"rtm_test_acc": float("nan"), "loss": [float("inf"), 1.5], "phase": "robust"})
    assert json.loads(line) == {"rtm_test_acc": None, "loss": [None, 1.5], "phase": "robust"}
    assert "NaN" not in line and "Infinity" not in line


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_epoch_0(tmp_path, monkeypatch):
    training.train(quick(tmp_path / "a", "run.name=full", "optim.epochs=2"))
    original = kill_at_epoch(monkeypatch, 0)
    with pytest.raises(Kill):
        training.train(quick(tmp_path / "b", "run.name=cut", "optim.epochs=2"))
    monkeypatch.setattr(training, "train_epoch", original)
    cut = tmp_path / "b" / "cut"
    assert not (cut / "checkpoint.pt").exists()
    # The same run.name points to --resume, and --resume does start it.
    with pytest.raises(ActError, match=f"continue it with --resume {cut}"):
        training.train(quick(tmp_path / "b", "run.name=cut", "optim.epochs=2"))
    training.resume(cut)
    assert without_timings(read_metrics(cut)) == without_timings(read_metrics(tmp_path / "a" / "full"))


@pytest.mark.parametrize("epoch, said", [(0, "no epoch is checkpointed yet"), (1, "epoch 0 is checkpointed in")])
def test_ctrl_c_says_which_epoch_is_checkpointed(tmp_path, monkeypatch, capsys, epoch, said):
    kill_at_epoch(monkeypatch, epoch, KeyboardInterrupt)
    assert main(["train", f"run.out_dir={tmp_path}", "run.name=r", "optim.epochs=2", "data.train_limit=100",
                 "data.test_limit=50", "run.progress=false", "run.threads=1"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("act: interrupted; " + said) and f"--resume {tmp_path / 'r'}" in err


def test_resume_refuses_fewer_epochs_than_completed(tmp_path):
    training.train(quick(tmp_path, "run.name=r", "optim.epochs=3"))
    config = (tmp_path / "r" / "config.yaml").read_text()
    with pytest.raises(ActError, match="optim.epochs=2 is below the 3 epochs"):
        training.resume(tmp_path / "r", ["optim.epochs=2"])
    assert (tmp_path / "r" / "config.yaml").read_text() == config


def test_the_thread_count_cannot_change_on_resume(tmp_path):
    """It changes the order of float reductions, so the resumed run would not be the same run."""
    training.train(quick(tmp_path, "run.name=r", "optim.epochs=1"))
    with pytest.raises(ActError, match="trained with 1 CPU threads and this process has 2 \\(run.threads=2\\); "
                                      "resume with run.threads=1$"):
        training.resume(tmp_path / "r", ["run.threads=2"])


@pytest.fixture
def thread_count():
    """The test may change torch's thread count; it is put back after."""
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def test_a_resume_under_another_default_thread_count_is_refused_naming_run_threads(tmp_path, thread_count):
    """run.threads=0 takes torch's default, which differs between machines."""
    training.train(quick(tmp_path, "run.name=r", "optim.epochs=2", "run.threads=0"))
    torch.set_num_threads(thread_count + 1)
    with pytest.raises(ActError, match=f"has {thread_count + 1} \\(run.threads=0, torch's default here\\); "
                                      f"resume with run.threads={thread_count}$"):
        training.resume(tmp_path / "r", ["optim.epochs=3"])
    training.resume(tmp_path / "r", ["optim.epochs=3", f"run.threads={thread_count}"])
    assert [r["epoch"] for r in read_metrics(tmp_path / "r")] == [0, 1, 2]


@pytest.mark.parametrize("edit,said", [
    (("batch_size: 64", "batch_size: 32"), "optim.batch_size: 64 in the checkpoint, 32 in config.yaml"),
    (("  lr: 0.02\n", "  lr: 0.05\n"), "optim.lr: 0.02 in the checkpoint, 0.05 in config.yaml"),
    (("  name: r\n  seed: 0", "  name: r\n  seed: 7"), "run.seed: 0 in the checkpoint, 7 in config.yaml"),
])
def test_a_hand_edited_config_is_refused_on_resume_naming_the_key(tmp_path, edit, said):
    training.train(quick(tmp_path, "run.name=r", "optim.epochs=1"))
    config = tmp_path / "r" / "config.yaml"
    text = config.read_text()
    assert edit[0] in text
    config.write_text(text.replace(edit[0], edit[1], 1))
    before = checkpoint.load(tmp_path / "r" / "checkpoint.pt")
    with pytest.raises(ActError, match=f"checkpoint.pt and the config.yaml beside it disagree \\({said}\\): the config "
                                      f"was edited or the checkpoint comes from another run; a resume continues"):
        training.resume(tmp_path / "r", ["optim.epochs=2"])
    assert checkpoint.load(tmp_path / "r" / "checkpoint.pt")["epoch"] == before["epoch"]


def test_moved_data_may_be_resumed_from_their_new_place(tmp_path):
    data = tmp_path / "data.npz"
    write_arrays(data)
    training.train(quick(tmp_path, "run.name=r", "optim.epochs=1", "data.name=arrays", f"data.root={data}"))
    moved = tmp_path / "moved.npz"
    data.rename(moved)
    config = tmp_path / "r" / "config.yaml"
    config.write_text(config.read_text().replace(str(data), str(moved)))
    training.resume(tmp_path / "r", ["optim.epochs=2"])
    assert [r["epoch"] for r in read_metrics(tmp_path / "r")] == [0, 1]


def test_moved_data_may_be_resumed_with_their_new_place_on_the_command_line(tmp_path):
    """`act train --resume RUN data.root=NEW` (what act sweep passes): the fingerprint checks the
    data are the same, and config.yaml records the new place; other data are refused."""
    data = tmp_path / "data.npz"
    write_arrays(data)
    training.train(quick(tmp_path, "run.name=r", "optim.epochs=1", "data.name=arrays", f"data.root={data}"))
    moved = tmp_path / "moved.npz"
    data.rename(moved)
    write_arrays(tmp_path / "other.npz", flip_label=True)
    with pytest.raises(ActError, match="changed"):
        training.resume(tmp_path / "r", ["optim.epochs=2", f"data.root={tmp_path / 'other.npz'}"])
    assert main(["train", "--resume", str(tmp_path / "r"), "optim.epochs=2", f"data.root={moved}"]) == 0
    assert [r["epoch"] for r in read_metrics(tmp_path / "r")] == [0, 1]
    assert f"root: {moved}" in (tmp_path / "r" / "config.yaml").read_text()


def test_a_moved_image_folder_resumes_from_its_new_place(tmp_path):
    """Image-file data are fingerprinted by their file list below the folder they share, so the
    whole tree moved is the same data; a checkpoint of before (absolute paths) resumes in place."""
    from act.datasets import read_data
    from support.datafactory import write_image_folder

    root = write_image_folder(str(tmp_path / "images"), ["cat", "dog"], per_class=8, size=12)
    args = ["run.name=r", "optim.epochs=1", "data.name=folder", f"data.root={root}", "data.image_size=8",
            "model.name=tinycnn", "pipeline.name=reference", "pipeline.workers=0", "optim.batch_size=8"]
    training.train(quick(tmp_path, *args))
    path = tmp_path / "r" / "checkpoint.pt"
    state = checkpoint.load(path)  # made as an earlier version wrote it: the absolute paths hashed
    source = read_data(load_config(None, [f"data.root={root}", "data.name=folder", "data.image_size=8"]))
    state["fingerprint"] = checkpoint.fingerprint(source, np.load(tmp_path / "r" / "labels.npz")["noisy"], moved=False)
    checkpoint.save(path, state)
    training.resume(tmp_path / "r", ["optim.epochs=2"])  # in place: the old fingerprint still fits
    (tmp_path / "images").rename(tmp_path / "moved")
    assert main(["train", "--resume", str(tmp_path / "r"), "optim.epochs=3", f"data.root={tmp_path / 'moved'}"]) == 0
    assert [r["epoch"] for r in read_metrics(tmp_path / "r")] == [0, 1, 2]


def write_arrays(path, seed=0, flip_label=False, flip_pixel=False):
    rs = np.random.RandomState(seed)
    x, x_test = rs.randint(0, 256, (120, 8, 8, 1), dtype=np.uint8), rs.randint(0, 256, (40, 8, 8, 1), dtype=np.uint8)
    y, y_test = np.arange(120) % 4, np.arange(40) % 4
    if flip_label:
        y[5] = (y[5] + 1) % 4
    if flip_pixel:
        x[7, 3, 3, 0] ^= 1
    np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test)


@pytest.mark.parametrize("change, said", [("flip_label", ": its labels differ from"),
                                          ("flip_pixel", " since .*checkpoint.pt was written")])
def test_resume_notices_data_changed_on_disk(tmp_path, change, said):
    data = tmp_path / "data.npz"
    write_arrays(data)
    training.train(quick(tmp_path, "run.name=r", "optim.epochs=1", "data.name=arrays", f"data.root={data}",
                         "data.noise.type=none", "data.noise.closeset_ratio=0"))
    write_arrays(data, **{change: True})
    with pytest.raises(ActError, match=re.escape(f"the data of run {tmp_path / 'r'} changed") + said):
        training.resume(tmp_path / "r", ["optim.epochs=2"])
    assert [r["epoch"] for r in read_metrics(tmp_path / "r")] == [0]


def test_a_checkpoint_of_another_model_is_refused_in_one_line(tmp_path, capsys):
    training.train(quick(tmp_path, "run.name=tiny", "optim.epochs=1"))
    training.train(quick(tmp_path, "run.name=seven", "optim.epochs=1", "model.name=sevencnn"))
    (tmp_path / "tiny" / "checkpoint.pt").write_bytes((tmp_path / "seven" / "checkpoint.pt").read_bytes())
    assert main(["train", "--resume", str(tmp_path / "tiny"), "optim.epochs=2"]) == 2
    assert "(model.name: 'sevencnn' in the checkpoint, 'tinycnn' in config.yaml and 1 more)" in one_line_error(capsys)


def test_an_out_dir_that_cannot_hold_runs_is_one_line(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    assert main(["train", f"run.out_dir={afile}", "optim.epochs=1", "data.train_limit=100"]) == 2
    assert f"run.out_dir={afile} is a file" in one_line_error(capsys)
    assert afile.read_text() == "mine"

    def read_only(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)  # as chmod would, also when the tests run as root
    assert main(["train", f"run.out_dir={tmp_path / 'ro' / 'runs'}", "optim.epochs=1", "data.train_limit=100"]) == 2
    assert "cannot hold run folders (Permission denied)" in one_line_error(capsys)


def test_a_named_folder_holding_other_files_is_left_alone(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "notes.txt").write_text("mine")
    with pytest.raises(ActError, match="holds files act did not write \\(notes.txt\\)"):
        training.train(quick(tmp_path, "run.name=r", "optim.epochs=1"))
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["notes.txt"]


def test_the_data_limits_cut_a_source_given_to_prepare_too(tmp_path):
    """Benchmarks hand prepare a Source of their own; data.train_limit / test_limit still hold."""
    from act.run.build import prepare
    from act.run.runtime import decide
    from support.datafactory import array_source

    cfg = load_config(None, ["data.train_limit=50", "data.test_limit=20", "run.threads=1"])
    run = prepare(cfg, decide(cfg), run_dir=tmp_path, source=array_source(n=120, size=8, channels=1, n_test=40))
    assert (len(run.pipeline.source.train), len(run.pipeline.source.test)) == (50, 20)
    assert len(run.pipeline.noisy) == 50 and run.pipeline.steps_per_epoch() == 1


def test_a_folder_data_set_with_a_file_name_that_is_not_utf8_trains(tmp_path):
    from act.datasets import read_data
    from support.datafactory import write_image_folder

    root = write_image_folder(str(tmp_path / "images"), ["cat", "dog"], per_class=2, size=36)
    cat = os.path.join(root, "train", "cat").encode()
    os.rename(cat + b"/000.png", cat + b"/caf\xe9.png")
    cfg = quick(tmp_path / "runs", "run.name=r", "data.name=folder", f"data.root={root}", "data.image_size=32",
                "model.name=tinycnn", "optim.batch_size=2", "pipeline.workers=0")
    assert training.train(cfg)["epochs"] == 4
    assert checkpoint.load(tmp_path / "runs" / "r" / "checkpoint.pt")["epoch"] == 3


def test_a_checkpoint_of_an_earlier_layout_resumes_as_the_current_one_does(tmp_path):
    """Checkpoints written before the nets' optimisers were rtm_opt/ntm_opt, and before they
    recorded the config and the thread count, still resume, to the same run."""
    training.train(quick(tmp_path / "new", "run.name=r", "optim.epochs=2"))
    training.train(quick(tmp_path / "old", "run.name=r", "optim.epochs=2"))
    path = tmp_path / "old" / "r" / "checkpoint.pt"
    state = checkpoint.load(path)
    state["opt0"], state["opt1"] = state.pop("rtm_opt"), state.pop("ntm_opt")
    del state["config"], state["threads"]
    checkpoint.save(path, state)
    for which in ("new", "old"):
        training.resume(tmp_path / which / "r", ["optim.epochs=3"])
    assert (without_timings(read_metrics(tmp_path / "old" / "r"))
            == without_timings(read_metrics(tmp_path / "new" / "r")))
    assert len(read_metrics(tmp_path / "old" / "r")) == 3


@pytest.mark.parametrize("value,refused", [("0.0", False), ("0.1", True)])
def test_a_config_key_the_checkpoint_does_not_record_counts_as_its_default(tmp_path, value, refused):
    """A key added to the config after a checkpoint was written is not an edit while it holds
    its default; any other value is one."""
    training.train(quick(tmp_path, "run.name=r", "optim.epochs=1", f"method.label_smoothing={value}"))
    path = tmp_path / "r" / "checkpoint.pt"
    state = checkpoint.load(path)
    record = json.loads(state["config"])
    del record["method.label_smoothing"]
    state["config"] = json.dumps(record, sort_keys=True)
    checkpoint.save(path, state)
    if refused:
        with pytest.raises(ActError, match=r"disagree \(method.label_smoothing: 0.0 in the checkpoint, 0.1 in config"):
            training.resume(tmp_path / "r", ["optim.epochs=2"])
    else:
        training.resume(tmp_path / "r", ["optim.epochs=2"])
        assert [r["epoch"] for r in read_metrics(tmp_path / "r")] == [0, 1]


def test_a_resume_does_not_need_the_weights_file_its_checkpoint_replaces(tmp_path):
    """model.pretrained is read when a run starts; a checkpoint holds the nets after that."""
    training.train(quick(tmp_path / "w", "run.name=w", "optim.epochs=1"))
    weights = tmp_path / "weights.pt"
    torch.save(checkpoint.load(tmp_path / "w" / "w" / "checkpoint.pt")["rtm"], weights)
    training.train(quick(tmp_path, "run.name=r", "optim.epochs=1", f"model.pretrained={weights}"))
    weights.unlink()
    training.resume(tmp_path / "r", ["optim.epochs=2"])
    assert [r["epoch"] for r in read_metrics(tmp_path / "r")] == [0, 1]


def test_the_thread_count_is_checked_for_cpu_runs_only(tmp_path):
    """A GPU run's sums do not depend on the CPU's thread count."""
    from types import SimpleNamespace
    cfg = quick(tmp_path)
    state = {"threads": torch.get_num_threads() + 1}
    checkpoint.check_threads(SimpleNamespace(device=torch.device("cuda", 0), cfg=cfg, dir=tmp_path), state, tmp_path)
    with pytest.raises(ActError, match="CPU threads"):
        checkpoint.check_threads(SimpleNamespace(device=torch.device("cpu"), cfg=cfg, dir=tmp_path), state, tmp_path)
