"""Every run records where it came from (issue 28, item 5): provenance.json, one entry per start and
per resume, read back checked (act/run/provenance.py, act/run/folder.py `RunFolder.provenance`)."""
import io
import json
import platform
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import torch

import act
from act.config import load_config
from act.pack import run as pack_run
from act.run import loop as training
from act.run import provenance
from act.run.folder import PROVENANCE, RUN_FILES, RunFileError, RunFolder

ROOT = Path(__file__).resolve().parent.parent
TINY = ["optim.epochs=2", "optim.warmup_epochs=1", "optim.lr_decay=cosine:1,5e-4,2", "data.train_limit=160",
        "data.test_limit=64", "optim.batch_size=32", "run.progress=false", "run.threads=1", "run.plots=false",
        "run.device=cpu"]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """A run of 2 epochs, then resumed for a third; the time before the start."""
    out = tmp_path_factory.mktemp("provenance")
    before = datetime.now(timezone.utc).replace(microsecond=0)
    training.train(load_config(None, [f"run.out_dir={out}", "run.name=run", *TINY]), out=io.StringIO())
    first = RunFolder(out / "run").provenance()
    training.resume(out / "run", ["optim.epochs=3"], out=io.StringIO())
    return out / "run", first, before


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def test_a_new_run_records_its_versions_machine_and_command_line(resumed):
    run, first, before = resumed
    assert len(first) == 1
    entry = first[0]
    assert entry["kind"] == "start" and entry["act"] == act.__version__
    assert entry["python"] == platform.python_version() and entry["torch"] == torch.__version__
    assert entry["host"] == socket.gethostname() and entry["argv"] == sys.argv
    started = datetime.fromisoformat(entry["time"])
    assert started.utcoffset() == timedelta(0) and before <= started <= datetime.now(timezone.utc)


def test_a_cpu_run_records_no_cuda_cudnn_or_driver(resumed):
    entry = resumed[1][0]
    assert (entry["cuda"], entry["cudnn"], entry["driver"]) == (None, None, None)
    assert entry["device"] == provenance.cpu_name()


def test_a_run_from_a_git_checkout_records_its_commit_and_whether_it_was_dirty(resumed):
    if not (ROOT / ".git").exists():
        pytest.skip("act is not imported from a git checkout here")
    entry = resumed[1][0]
    assert entry["commit"] == git("rev-parse", "HEAD")
    assert entry["dirty"] == (git("status", "--porcelain", "--untracked-files=no") != "")


def test_a_resume_adds_its_own_entry_after_the_start(resumed):
    run, first, _ = resumed
    entries = RunFolder(run).provenance()
    assert [e["kind"] for e in entries] == ["start", "resume"]
    assert entries[0] == first[0] and entries[1]["time"] >= entries[0]["time"]


def test_an_act_outside_a_git_checkout_records_no_commit(tmp_path):
    assert provenance.git_state(tmp_path) == (None, None)


@pytest.mark.parametrize("failure", [FileNotFoundError("git"), subprocess.TimeoutExpired("git", 5)],
                         ids=["git missing", "git hangs"])
def test_git_missing_or_hanging_records_null_and_the_run_goes_on(tmp_path, monkeypatch, failure):
    (tmp_path / ".git").mkdir()

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(provenance.subprocess, "run", fail)
    assert provenance.git_state(tmp_path) == (None, None)
    assert provenance.entry("start", torch.device("cpu"))["commit"] is None


def test_provenance_json_is_a_run_file_no_output_replaces(resumed):
    assert PROVENANCE in RUN_FILES


@pytest.mark.parametrize("edit,why", [
    (lambda entries: entries[0], "the top level is a mapping, not a list"),
    (lambda entries: [{k: v for k, v in entries[0].items() if k != "host"}], "'[0].host' is missing"),
    (lambda entries: [dict(entries[0], dirty="yes")], "'[0].dirty' is a string, not true or false or null"),
    (lambda entries: [dict(entries[0], kind="restart")], "'kind' is 'restart', not start or resume"),
], ids=["not a list", "a key missing", "a wrong type", "an unknown kind"])
def test_a_provenance_file_that_is_not_what_a_run_writes_is_refused_in_one_line(tmp_path, edit, why):
    (tmp_path / PROVENANCE).write_text(json.dumps(edit([provenance.entry("start", torch.device("cpu"))])))
    with pytest.raises(RunFileError) as exc:
        RunFolder(tmp_path).provenance()
    assert exc.value.why == f"{PROVENANCE} does not hold what a run writes ({why})"


def test_an_unreadable_provenance_file_is_replaced_by_the_new_entry_and_said(resumed, tmp_path):
    entry = RunFolder(resumed[0]).provenance()[0]
    (tmp_path / PROVENANCE).write_text("[{")
    why = RunFolder(tmp_path).add_provenance(entry)
    assert why.startswith(f"{PROVENANCE} cannot be read as JSON")
    assert RunFolder(tmp_path).provenance() == [entry]


def test_each_run_of_a_pack_records_its_start(tmp_path):
    runs = [{"overrides": [*TINY, "optim.epochs=1", f"run.out_dir={tmp_path}", f"run.name=s{seed}",
                           f"run.seed={seed}"]} for seed in (0, 1)]
    (tmp_path / "pack.yaml").write_text(json.dumps({"runs": runs}))
    pack_run.train_pack(tmp_path / "pack.yaml", out=io.StringIO())
    for name in ("s0", "s1"):
        entries = RunFolder(tmp_path / name).provenance()
        assert [e["kind"] for e in entries] == ["start"] and entries[0]["argv"] == sys.argv
