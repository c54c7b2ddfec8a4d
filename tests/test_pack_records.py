"""Records written once and read back (issue 29, items 3, 4 and 6): a resume rewrites the records
a crash cut short from its checkpoint; a command that ends a run reads its folder back as report
and sweep read it; a pack leaves a finished member's folder as it is, and a summary names a pack
only for the epochs its run trained in one."""
import io
import json

import pytest

from act.commands.cli import main
from act.config import load_config
from act.errors import ActError
from act.pack import run as pack_run
from act.run import loop as training
from act.run.folder import RunFolder
from act.run.state import read_run

TINY = ["optim.epochs=2", "optim.warmup_epochs=1", "optim.lr_decay=cosine:1,5e-4,2", "optim.batch_size=32",
        "data.train_limit=160", "data.test_limit=64", "run.threads=1", "run.progress=false", "run.plots=false",
        "run.device=cpu"]


def run_alone(runs, name, *extra):
    training.train(load_config(None, [*TINY, f"run.out_dir={runs}", f"run.name={name}", *extra]), out=io.StringIO())
    return runs / name


def write_pack(path, runs, names, *extra) -> str:
    path.write_text(json.dumps({"runs": [{"overrides": [*TINY, f"run.seed={i}", f"run.out_dir={runs}",
                                                        f"run.name={name}", *extra]} for i, name in enumerate(names)]}))
    return str(path)


def test_a_resume_rewrites_metrics_cut_short_from_the_checkpoint_and_the_run_reads_finished(tmp_path):
    run = run_alone(tmp_path, "a")
    whole = (run / "metrics.jsonl").read_bytes()
    (run / "metrics.jsonl").write_bytes(whole[:-20])  # a crash mid-write
    assert read_run(run).state == "broken: metrics.jsonl line 2 is not JSON (truncated?)"
    assert main(["train", "--resume", str(run)]) == 0
    assert read_run(run).finished
    assert RunFolder(run).metrics() == [json.loads(line) for line in whole.decode().splitlines()]


def test_a_run_that_does_not_read_back_finished_exits_non_zero_saying_why(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(RunFolder, "write_metrics", lambda self, history: (self / "metrics.jsonl").write_text("{"))
    assert main(["train", *TINY, f"run.out_dir={tmp_path}", "run.name=a"]) == 2
    err = capsys.readouterr().err
    assert "reads back broken: metrics.jsonl line 1 is not JSON (truncated?), not finished" in err


def test_a_pack_leaves_a_finished_member_as_it_is_and_says_so(tmp_path):
    done = run_alone(tmp_path / "runs", "a")
    before = {f.name: f.read_bytes() for f in done.iterdir() if f.is_file() and f.name != ".lock"}
    out = io.StringIO()
    pack_run.train_pack(write_pack(tmp_path / "pack.yaml", tmp_path / "runs", ["a", "b"]), out=out)
    assert f"a: finished already; the pack leaves its folder {done} as it is" in out.getvalue()
    assert {f.name: f.read_bytes() for f in done.iterdir() if f.is_file() and f.name != ".lock"} == before
    assert "packed" not in RunFolder(done).summary()


def test_a_summary_names_the_pack_with_the_members_and_epochs_that_trained_in_it(tmp_path):
    runs = tmp_path / "runs"
    run_alone(runs, "a", "optim.epochs=1", "run.seed=0")  # epoch 0 alone; the pack trains its epoch 1
    pack_run.train_pack(write_pack(tmp_path / "pack.yaml", runs, ["a", "b"]), out=io.StringIO())
    assert RunFolder(runs / "a").summary()["packed"] == {"k": 2, "members": ["a", "b"], "epochs": [1, 1]}
    assert [r["epoch"] for r in RunFolder(runs / "b").metrics()] == [0, 1]  # b caught up alone on epoch 0


def test_a_pack_whose_every_member_diverges_says_all_stopped(tmp_path):
    with pytest.raises(ActError, match="^all 2 packed runs stopped: a ") as info:
        pack_run.train_pack(write_pack(tmp_path / "pack.yaml", tmp_path / "runs", ["a", "b"], "optim.lr1=1e30"),
                            out=io.StringIO())
    assert "the others finished" not in str(info.value)
