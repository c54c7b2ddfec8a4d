"""Packed runs (issue 23), the run level: `act train --pack FILE` trains K runs in one process,
each still its own run folder.

A pack of 4 runs (2 seeds x 2 noise rates; 1 warm-up and 2 robust epochs of tinycnn on digits)
writes what the 4 runs alone write: the same epoch records (counts, selection, mining, accuracies;
losses within 1e-10) and checkpoints (weights, momentum, bank within 1e-10), in float64 so
that the grouped convolutions' other order of sums stays below the tolerance; also on the GPU's
code paths walked on the CPU. A packed run's folder is an ordinary run's (resume alone, report,
issues); a killed pack resumes with every epoch once; a pack run again resumes its runs; a run
that diverges stops alone; runs that cannot share a step are refused first, in one line. An
epoch of a pack applies its runs' views in one pass per chunk, not one per run.
"""
import io
import json

import pytest
import torch
import torch.nn.functional as F

from act.commands.cli import main
from act.config import load_config
from act.errors import ActError
from act.method import functions as M
from act.pack import run as pack_run
from act.run import checkpoint, runtime
from act.run import loop as training
from act.run.folder import RunFolder
from pipelines.base import Pipeline
from pipelines.tensor import TensorPipeline

RUNS = {f"s{seed}-n{rate}": [f"run.seed={seed}", f"data.noise.seed={seed}", f"data.noise.closeset_ratio={rate}"]
        for seed in (0, 1) for rate in (0.2, 0.6)}
TINY = ["optim.epochs=3", "optim.warmup_epochs=1", "optim.lr_decay=cosine:1,5e-4,3", "optim.batch_size=32",
        "data.train_limit=160", "data.test_limit=64", "run.threads=1", "run.progress=false", "run.plots=false",
        "run.device=cpu"]
EXACT = ("epoch", "phase", "lr", "lr1", "rtm_test_acc", "ntm_test_acc", "sel_precision", "sel_recall", "sel_f1",
         "selected_frac", "mining", "rtm_train_acc", "ntm_train_acc", "samples_seen")
TOLERANCE = 1e-10


@pytest.fixture(scope="module")
def float64():
    """Runs in float64 (no config key sets it): the nets by the default dtype, the views and the
    bank's EMA cast to it."""
    normalise, create = Pipeline.normalise, M.Bank.create.__func__
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Pipeline, "normalise", lambda self, images: normalise(self, images).to(torch.float64))
        patch.setattr(M.Bank, "create", classmethod(
            lambda cls, noisy, classes: cls(count=create(cls, noisy, classes).count,
                                            ema=F.one_hot(noisy, classes).to(torch.float64))))
        before = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            yield
        finally:
            torch.set_default_dtype(before)


def overrides(name: str, out, *extra: str) -> list[str]:
    return [*RUNS[name], *TINY, f"run.out_dir={out}", f"run.name={name}", *extra]


def write_pack(path, out, *extra: str, names=tuple(RUNS)) -> str:
    """A pack file of the runs `names` (the embedded demo's config with their overrides)."""
    path.write_text(json.dumps({"runs": [{"overrides": overrides(name, out, *extra)} for name in names]}))
    return str(path)


@pytest.fixture(scope="module")
def alone(float64, tmp_path_factory):
    """The 4 runs trained alone, by `act train`."""
    out = tmp_path_factory.mktemp("alone")
    for name in RUNS:
        training.train(load_config(None, overrides(name, out)), out=io.StringIO())
    return out


@pytest.fixture(scope="module")
def packed(float64, tmp_path_factory):
    """The 4 runs trained as one pack."""
    out = tmp_path_factory.mktemp("packed")
    pack_run.train_pack(write_pack(out / "pack.yaml", out / "runs"), out=io.StringIO())
    return out / "runs"


def assert_same_records(run_dir, alone_dir) -> None:
    got, want = RunFolder(run_dir).metrics(), RunFolder(alone_dir).metrics()
    assert [r["epoch"] for r in got] == [r["epoch"] for r in want]
    for a, b in zip(got, want):
        assert {k: a[k] for k in EXACT} == {k: b[k] for k in EXACT}
        assert abs(a["rtm_loss"] - b["rtm_loss"]) <= TOLERANCE and abs(a["ntm_loss"] - b["ntm_loss"]) <= TOLERANCE


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def assert_same_checkpoint(run_dir, alone_dir) -> None:
    got, want = checkpoint.load(run_dir / "checkpoint.pt"), checkpoint.load(alone_dir / "checkpoint.pt")
    assert got["epoch"] == want["epoch"] and got["config"] != want["config"]  # run.out_dir differs
    for net in ("rtm", "ntm"):
        assert max_difference(got[net], want[net]) <= TOLERANCE
        momentum = [{str(i): s["momentum_buffer"] for i, s in state[f"{net}_opt"]["state"].items()}
                    for state in (got, want)]
        assert len(momentum[0]) == len(momentum[1]) > 0
        assert max_difference(*momentum) <= TOLERANCE
        assert got[f"{net}_opt"]["param_groups"][0]["lr"] == want[f"{net}_opt"]["param_groups"][0]["lr"]
    assert torch.equal(got["bank"]["count"], want["bank"]["count"])
    assert (got["bank"]["ema"] - want["bank"]["ema"]).abs().max() <= TOLERANCE
    assert torch.equal(got["rng"]["torch"], want["rng"]["torch"])  # the run's own, not the pack's last


def test_a_pack_of_four_runs_writes_what_the_four_runs_alone_write(packed, alone):
    for name in RUNS:
        assert_same_records(packed / name, alone / name)
        assert_same_checkpoint(packed / name, alone / name)
        got, want = RunFolder(packed / name).bank(), RunFolder(alone / name).bank()
        assert (got.selected == want.selected).all() and abs(got.ema - want.ema).max() <= TOLERANCE
        summary = RunFolder(packed / name).summary()
        assert summary["packed"] == {"k": 4, "members": list(RUNS), "epochs": [0, 2]}
        assert summary["rtm"] == RunFolder(alone / name).summary()["rtm"]
    robust = [r for name in RUNS for r in RunFolder(packed / name).metrics() if r["phase"] == "robust"]
    assert all(0 < r["selected_frac"] < 1 for r in robust)  # selection at work, so the comparison means something
    assert {r["mining"] for r in robust} != {0.0}


def test_a_pack_on_the_gpus_code_paths_writes_the_same(float64, alone, tmp_path, monkeypatch):
    """run.cuda_graph's path walked on the CPU (act/run/runtime.py `cuda_paths`): the packed steps
    from static buffers, the pipelines' static views; the same records and checkpoints."""
    resolve = runtime.resolve
    monkeypatch.setattr(runtime, "resolve", lambda cfg, env, cuda_paths=None: resolve(cfg, env, True))
    pack_run.train_pack(write_pack(tmp_path / "pack.yaml", tmp_path / "runs"), out=io.StringIO())
    for name in RUNS:
        assert RunFolder(tmp_path / "runs" / name).summary()["runtime"]["cuda_paths"]
        assert_same_records(tmp_path / "runs" / name, alone / name)
        assert_same_checkpoint(tmp_path / "runs" / name, alone / name)


def test_report_and_issues_read_a_packed_run_as_any_run(packed, capsys):
    assert main(["report", str(packed)]) == 0
    assert main(["issues", str(packed / "s0-n0.6"), "--top", "3"]) == 0
    table = capsys.readouterr().out
    assert table.count("finished") >= 4 and "broken" not in table


def test_a_packed_run_resumed_alone_continues_as_a_run_alone(float64, alone, tmp_path):
    """Two epochs packed, the third by `act train --resume` of one run: the 3-epoch run alone."""
    pack_run.train_pack(write_pack(tmp_path / "pack.yaml", tmp_path / "runs", "optim.epochs=2"), out=io.StringIO())
    run = tmp_path / "runs" / "s1-n0.2"
    training.resume(run, ["optim.epochs=3"], out=io.StringIO())
    assert_same_records(run, alone / "s1-n0.2")
    assert_same_checkpoint(run, alone / "s1-n0.2")


def test_a_killed_pack_resumes_with_every_epoch_once(float64, alone, tmp_path, monkeypatch):
    """Killed in epoch 1 between two runs' checkpoints: two runs have it, two do not (one of each
    pair has not written its metrics line). Again, the two behind train epoch 1 alone, then all
    four epoch 2 packed (their momentum packed): each run has every epoch once, as alone."""
    path = write_pack(tmp_path / "pack.yaml", tmp_path / "runs")
    save, saves = checkpoint.save_run, []

    def save_then_stop(run, epoch):
        save(run, epoch)
        saves.append(run.cfg.run.name)
        if len(saves) == 6:
            raise KeyboardInterrupt  # Ctrl-C, or SIGTERM as the command raises it

    monkeypatch.setattr(checkpoint, "save_run", save_then_stop)
    with pytest.raises(KeyboardInterrupt, match=f"continue with `act train --pack {path}`"):
        pack_run.train_pack(path, out=io.StringIO())
    runs = tmp_path / "runs"
    assert [len(RunFolder(runs / name).metrics()) for name in RUNS] == [2, 1, 1, 1]
    assert [RunFolder(runs / name).checkpoint()["epoch"] for name in RUNS] == [1, 1, 0, 0]
    monkeypatch.setattr(checkpoint, "save_run", save)
    console = io.StringIO()
    pack_run.train_pack(path, out=console)
    assert "resuming" in console.getvalue()
    for name in RUNS:
        assert_same_records(runs / name, alone / name)
        assert_same_checkpoint(runs / name, alone / name)


def test_a_run_that_diverges_stops_alone_and_the_others_finish(float64, alone, tmp_path, monkeypatch):
    """NaN weights in one run's slice of the packed RTM from epoch 1 on: that run stops there
    (diverged.json; its epoch-0 checkpoint and metrics stay), the other three finish as alone."""
    epoch_of_pack = pack_run.train_pack_epoch

    def poison_second_run(pack, members, epoch, progress):
        if epoch == 1:
            with torch.no_grad():
                next(pack.ctx.rtm.parameters()).unflatten(0, (len(members), -1))[1].fill_(float("nan"))
        return epoch_of_pack(pack, members, epoch, progress)

    monkeypatch.setattr(pack_run, "train_pack_epoch", poison_second_run)
    with pytest.raises(ActError, match="1 of the 4 packed runs stopped") as info:
        pack_run.train_pack(write_pack(tmp_path / "pack.yaml", tmp_path / "runs"), out=io.StringIO())
    assert "\n" not in str(info.value)
    runs, stopped = tmp_path / "runs", list(RUNS)[1]
    folder = RunFolder(runs / stopped)
    assert folder.diverged()["epoch"] == 1 and folder.summary() is None
    assert len(folder.metrics()) == 1 and folder.checkpoint()["epoch"] == 0
    assert not (runs / stopped / "bank.npz").exists()
    for name in RUNS:
        if name != stopped:
            assert_same_records(runs / name, alone / name)
            assert_same_checkpoint(runs / name, alone / name)


def test_a_pack_run_again_resumes_its_runs_and_refuses_a_changed_experiment(tmp_path, capsys):
    """A pack of one: its run again with more epochs continues (as --resume); with another seed,
    one line naming the key and the run's config.yaml."""
    name, runs = "s0-n0.2", tmp_path / "runs"
    path = write_pack(tmp_path / "pack.yaml", runs, "optim.epochs=1", names=[name])
    assert main(["train", "--pack", path]) == 0
    write_pack(tmp_path / "pack.yaml", runs, "optim.epochs=2", names=[name])
    assert main(["train", "--pack", path]) == 0
    assert "resuming" in capsys.readouterr().out
    assert [r["epoch"] for r in RunFolder(runs / name).metrics()] == [0, 1]
    write_pack(tmp_path / "pack.yaml", runs, "optim.epochs=2", "run.seed=5", names=[name])
    assert main(["train", "--pack", path]) == 2
    err = capsys.readouterr().err
    assert f"run.seed is 5 here but 0 in {runs / name / 'config.yaml'}" in err and err.count("\n") == 1


@pytest.mark.parametrize("change, says", [
    (["optim.lr=0.03"], "runs s0-n0.2 and s0-n0.6 cannot share a step (optim.lr: 0.02 vs 0.03)"),
    (["model.name=timm:resnet18"], "run s0-n0.6 cannot be packed: model.name=timm:resnet18 has no grouped twin"),
    (["method.tau=2"], "cannot share a step (method.tau: 0.025 vs 2.0)"),
    (["run.name=s0-n0.2"], "share the folder"),
])
def test_runs_that_cannot_share_a_step_are_refused_in_one_line_before_any_folder(tmp_path, capsys, change, says):
    items = [{"overrides": overrides(name, tmp_path / "runs")} for name in list(RUNS)[:2]]
    items[1]["overrides"] += change
    (tmp_path / "pack.yaml").write_text(json.dumps({"runs": items}))
    assert main(["train", "--pack", str(tmp_path / "pack.yaml")]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("text, says", [
    ("runs: []", "must hold `runs:`"),
    ("runs:\n  - overrides: [run.seed=0]", "run 1 has no run.name"),
    ("runs:\n  - overrides: [optim.lr=x, run.name=a]", "run 1: optim.lr"),
    ("runs:\n  - config: missing.yaml\n    overrides: [run.name=a]", "missing.yaml does not exist"),
    ("runs:\n  - override: [run.name=a]", "run 1 is not"),
])
def test_a_pack_file_that_is_not_one_is_one_line(tmp_path, capsys, text, says):
    (tmp_path / "pack.yaml").write_text(text)
    assert main(["train", "--pack", str(tmp_path / "pack.yaml")]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


def test_an_epoch_of_a_pack_makes_one_view_pass_per_chunk_not_one_per_run(tmp_path, monkeypatch):
    """The GPU's code paths walked on the CPU, 160 images in batches of 8 (chunks of 64, 64, 32):
    per epoch, the pack of 4 applies its views in 3 passes of 4 x 64, 4 x 64 and 4 x 32 images, the
    full chunks by the pack's captured pass (`views.pack.both` in each run's summary), not 12."""
    resolve, apply_views, passes = runtime.resolve, TensorPipeline.apply_views, []
    monkeypatch.setattr(runtime, "resolve", lambda cfg, env, cuda_paths=None: resolve(cfg, env, True))

    def counted(self, index, weak, strong):
        passes.append(len(index))
        return apply_views(self, index, weak, strong)

    monkeypatch.setattr(TensorPipeline, "apply_views", counted)
    pack_run.train_pack(write_pack(tmp_path / "pack.yaml", tmp_path / "runs", "optim.batch_size=8"),
                        out=io.StringIO())
    assert passes == [4 * 64, 4 * 64, 4 * 32] * 3
    for name in RUNS:
        summary = RunFolder(tmp_path / "runs" / name).summary()
        assert summary["cuda_graph"]["views.pack.both"] == "graph" and "views.both" not in summary["cuda_graph"]
        assert [r["samples_seen"] for r in RunFolder(tmp_path / "runs" / name).metrics()] == [160] * 3
