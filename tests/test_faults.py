"""Fault injection: kills at random moments, a full disk, read-only folders, corrupt files, two
writers. After each fault nothing written before is lost, and a resumed run ends exactly where
an uninterrupted one does. Tiny runs of the embedded demo on the CPU (about a minute in all)."""
import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from act.commands.cli import main
from act.config import load_config
from act.errors import ActError
from act.run import checkpoint
from act.run import loop as training

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["optim.epochs=6", "optim.warmup_epochs=2", "optim.lr_decay=cosine:2,5e-4,6", "data.train_limit=400",
        "data.test_limit=100", "run.threads=1", "run.progress=false", "run.device=cpu"]
TIMING_KEYS = {"epoch_seconds", "train_seconds", "images_per_s"}
ENV = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


def read_metrics(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def files_of(run_dir):
    return {p.name: p.read_bytes() for p in Path(run_dir).iterdir() if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run, finished: every test compares against it or starts from a copy."""
    out = tmp_path_factory.mktemp("reference")
    training.train(load_config(None, [f"run.out_dir={out}", "run.name=full", *ARGS]))
    return out / "full"


def copy_run(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run, ignore=shutil.ignore_patterns(".lock"))
    return run


def assert_same_as(run, reference):
    assert read_metrics(run) == read_metrics(reference)
    a, b = checkpoint.load(run / "checkpoint.pt"), checkpoint.load(reference / "checkpoint.pt")
    for net in ("rtm", "ntm"):
        assert all(torch.equal(t, b[net][k]) for k, t in a[net].items()), net
    assert torch.equal(a["bank"]["ema"], b["bank"]["ema"]) and torch.equal(a["bank"]["count"], b["bank"]["count"])


def launch(out, run):
    """`python -m act train`: a fresh start while the folder holds no run yet, --resume after."""
    if (run / "config.yaml").is_file():
        cmd = ["train", "--resume", str(run)]
    else:
        cmd = ["train", f"run.out_dir={out}", f"run.name={run.name}", *ARGS]
    return subprocess.Popen([sys.executable, "-m", "act", *cmd], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_rows(proc, rows: int) -> bool:
    """Read stdout past the table header and `rows` epoch rows (a resumed run first reprints the
    rows it has); False if the process ended first."""
    seen = None
    for line in proc.stdout:
        if seen is None and line.lstrip().startswith("epoch"):
            seen = 0
        elif seen is not None and line[:5].strip().isdigit():
            seen += 1
        if seen is not None and seen >= rows:
            return True
    return False


def completed(run) -> int:
    path = run / "checkpoint.pt"
    return checkpoint.load(path)["epoch"] + 1 if path.is_file() else 0


def test_kills_at_random_moments_then_resume_reproduce_the_uninterrupted_run(reference, tmp_path):
    """SIGKILL at seeded random moments: the first while the process starts (before any
    checkpoint), the others 0 or 1 epochs into the loop plus a random fraction of an epoch
    (mid-epoch, mid-checkpoint, between the checkpoint and the metrics line); each time the
    next launch carries on, by a fresh start while no run was written, by --resume after."""
    rng = random.Random(14)
    out, run = tmp_path, tmp_path / "run"
    kills = []
    for attempt in range(5):
        done = completed(run)
        proc = launch(out, run)
        if attempt == 0:
            time.sleep(rng.uniform(0.5, 3.0))
        elif wait_for_rows(proc, done + rng.randrange(2)):
            time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGKILL), err
        if proc.returncode == 0:
            break
        kills.append(completed(run))
    if proc.returncode != 0:
        proc = launch(out, run)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert len(kills) >= 4 and kills[0] == 0 and max(kills) >= 2, kills
    assert_same_as(run, reference)
    assert json.loads((run / "summary.json").read_text())["rtm"] == \
        json.loads((reference / "summary.json").read_text())["rtm"]
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_while_checkpointing_keeps_the_old_checkpoint_and_resume_completes(
        reference, tmp_path, monkeypatch, capsys):
    calls = {"n": 0}
    fsync = os.fsync

    def disk_full_at_the_third_save(fd):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", disk_full_at_the_third_save)
    assert main(["train", f"run.out_dir={tmp_path}", "run.name=run", *ARGS]) == 2
    err = capsys.readouterr().err.strip()
    run = tmp_path / "run"
    assert err == f"act: error: cannot write {run / 'checkpoint.pt'} (No space left on device); " \
                  "the previous version, if any, is kept"
    assert checkpoint.load(run / "checkpoint.pt")["epoch"] == 1
    assert len(read_metrics(run)) == 2
    assert sorted(p.name for p in run.iterdir()) == \
        [".lock", "checkpoint.pt", "config.yaml", "labels.npz", "metrics.jsonl", "noise.json", "provenance.json"]
    monkeypatch.setattr(os, "fsync", fsync)
    assert main(["train", "--resume", str(run)]) == 0
    assert_same_as(run, reference)


@pytest.mark.skipif(os.geteuid() == 0, reason="runs as root, where chmod does not make a folder read-only "
                                              "(the other fault cases still run)")
def test_a_read_only_run_folder_is_one_line_and_loses_nothing(reference, tmp_path, capsys):
    run = copy_run(reference, tmp_path)
    before = files_of(run)
    run.chmod(0o555)
    try:
        assert main(["train", "--resume", str(run), "optim.epochs=7"]) == 2
    finally:
        run.chmod(0o755)
    err = capsys.readouterr().err.strip()
    assert err.startswith("act: error: ") and str(run) in err and "\n" not in err
    assert files_of(run) == before


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_checkpoint_is_refused_in_one_line_and_nothing_is_touched(reference, tmp_path, capsys, damage):
    run = copy_run(reference, tmp_path)
    path = run / "checkpoint.pt"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        del data[len(data) // 2:]
    else:
        data[-1000] ^= 0x10
    path.write_bytes(bytes(data))
    before = files_of(run)
    assert main(["train", "--resume", str(run), "optim.epochs=7"]) == 2
    assert capsys.readouterr().err.strip() == \
        f"act: error: checkpoint {path} is corrupt (its checksum does not match: truncated or altered); " \
        "the run cannot be resumed from it"
    assert files_of(run) == before


def test_random_number_states_that_do_not_fit_are_one_line_on_resume(reference, tmp_path, capsys):
    run = copy_run(reference, tmp_path)
    state = checkpoint.load(run / "checkpoint.pt")
    state["rng"]["torch"] = torch.zeros(3, dtype=torch.uint8)  # a valid checksum over a state of another size
    checkpoint.save(run / "checkpoint.pt", state)
    assert main(["train", "--resume", str(run), "optim.epochs=7"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds random-number states that cannot be restored (RuntimeError)" in err


def test_a_corrupt_metrics_file_is_rebuilt_from_the_checkpoint_on_resume(reference, tmp_path, monkeypatch):
    original = training.train_epoch

    def killed_in_epoch_4(run, epoch, progress):
        if epoch == 4:
            raise KeyboardInterrupt
        return original(run, epoch, progress)

    monkeypatch.setattr(training, "train_epoch", killed_in_epoch_4)
    with pytest.raises(KeyboardInterrupt, match="epoch 3 is checkpointed"):
        training.train(load_config(None, [f"run.out_dir={tmp_path}", "run.name=run", *ARGS]))
    monkeypatch.setattr(training, "train_epoch", original)
    run = tmp_path / "run"
    (run / "metrics.jsonl").write_text('{"epoch": 0, "rtm_test_acc": NaN\n{garbage')
    training.resume(run)
    assert_same_as(run, reference)


def lock_holder(run) -> subprocess.Popen:
    """Another process that takes the run folder's lock and holds it (it prints "held" once it has)."""
    return subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from act.run.folder import acquire; "
                               "acquire(Path(sys.argv[1])); print('held', flush=True); time.sleep(120)", str(run)],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)


def test_a_second_writer_is_refused_and_a_dead_ones_lock_does_not_block(reference, tmp_path):
    run = copy_run(reference, tmp_path)
    holder = lock_holder(run)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ActError, match=f"run folder {run} is in use by process {holder.pid}"):
            training.resume(run, ["optim.epochs=7"])
    finally:
        holder.kill()
        holder.wait()
    assert (run / ".lock").exists()  # the dead holder's lock file stays; the kernel released its lock
    training.resume(run, ["optim.epochs=7"])
    assert [r["epoch"] for r in read_metrics(run)] == list(range(7))


# ---- act writes only where it created, never through a link (issue 19, item 1) ----

def test_a_link_planted_as_the_lock_is_refused_and_its_target_untouched(reference, tmp_path, capsys):
    run = copy_run(reference, tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("a user's file")
    (run / ".lock").symlink_to(outside)
    assert main(["train", "--resume", str(run), "optim.epochs=7"]) == 2
    assert capsys.readouterr().err == f"act: error: {run / '.lock'} is a link; act never writes through one: remove it\n"
    assert outside.read_text() == "a user's file"


def test_a_resume_never_writes_through_a_link_planted_as_a_temp_file(reference, tmp_path):
    """Links named as act's temp files (act/run/files.py `new_temp`) are removed by the lock's
    taker as a killed writer's leftovers: the links, never their target."""
    from act.run.files import is_temp, new_temp

    run = copy_run(reference, tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("a user's file")
    planted = []
    for name in ("metrics.jsonl", "checkpoint.pt", "summary.json"):
        temp = new_temp(run / name)
        temp.unlink()
        temp.symlink_to(outside)
        planted.append(temp)
    assert all(is_temp(t.name) and t.is_symlink() for t in planted)
    training.resume(run, ["optim.epochs=7"])
    assert outside.read_text() == "a user's file" and len(read_metrics(run)) == 7
    assert not any(t.is_symlink() or t.exists() for t in planted)


def test_a_named_run_keeps_a_users_own_temp_file_and_refuses_the_folder(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / ".notes.tmp").write_text("mine")
    assert main(["train", f"run.out_dir={tmp_path}", "run.name=x", *ARGS]) == 2
    assert "holds files act did not write (.notes.tmp)" in capsys.readouterr().err
    assert (tmp_path / "x" / ".notes.tmp").read_text() == "mine"


def test_issues_out_never_replaces_a_runs_own_file_even_when_forced(reference, tmp_path, capsys):
    run = copy_run(reference, tmp_path)
    before = files_of(run)
    assert main(["issues", str(run), "--out", str(run / "checkpoint.pt"), "--force"]) == 2
    assert "is a file of run" in capsys.readouterr().err and files_of(run) == before


def test_issues_out_replaces_a_file_act_did_not_write_only_when_forced(reference, tmp_path, capsys):
    out = tmp_path / "mine.csv"
    out.write_text("a user's table\n")
    assert main(["issues", str(reference), "--out", str(out)]) == 2
    assert "exists and act did not write it; add --force" in capsys.readouterr().err
    assert out.read_text() == "a user's table\n"
    assert main(["issues", str(reference), "--out", str(out), "--force"]) == 0
    assert out.read_text().startswith("index,file,given_label")


def test_issues_out_replaces_its_own_earlier_file(reference, tmp_path):
    out = tmp_path / "issues.csv"
    assert main(["issues", str(reference), "--out", str(out)]) == 0
    assert main(["issues", str(reference), "--out", str(out)]) == 0


def test_report_out_refuses_a_users_report_and_replaces_its_own(reference, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("my notes")
    assert main(["report", str(reference), "--out", str(out)]) == 2
    assert "report.md exists and act did not write it" in capsys.readouterr().err
    assert (out / "report.md").read_text() == "my notes"
    assert main(["report", str(reference), "--out", str(out), "--force"]) == 0
    assert main(["report", str(reference), "--out", str(out)]) == 0
    assert (out / "report.md").read_text().startswith("## Test accuracy")


def test_report_out_replaces_a_link_never_its_target(reference, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text("kept")
    (out / "report.md").symlink_to(elsewhere)
    assert main(["report", str(reference), "--out", str(out), "--force"]) == 0
    assert elsewhere.read_text() == "kept" and not (out / "report.md").is_symlink()


def test_report_out_reads_no_record_through_a_link_and_replaces_the_link_only_when_forced(reference, tmp_path,
                                                                                          capsys):
    """A link named as the record of what act report wrote vouches for nothing: a user's report.md
    it claims is still refused, and the link is replaced (never its target) only with --force."""
    import hashlib

    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("my notes")
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps({"report.md": hashlib.sha256(b"my notes").hexdigest()}))
    (out / ".act-report.json").symlink_to(claim)
    assert main(["report", str(reference), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"act: error: --out {out / '.act-report.json'} exists and act did not write "
                                       f"it; add --force to replace it, or choose another path\n")
    assert (out / "report.md").read_text() == "my notes"
    assert main(["report", str(reference), "--out", str(out), "--force"]) == 0
    assert not (out / ".act-report.json").is_symlink() and claim.read_text().startswith('{"report.md"')
    assert (out / "report.md").read_text().startswith("## Test accuracy")


def test_report_out_with_a_folder_named_as_its_record_writes_nothing(reference, tmp_path, capsys):
    out = tmp_path / "report"
    (out / ".act-report.json").mkdir(parents=True)
    assert main(["report", str(reference), "--out", str(out), "--force"]) == 2
    assert capsys.readouterr().err == f"act: error: --out {out / '.act-report.json'} is a folder; name a file\n"
    assert [p.name for p in out.iterdir()] == [".act-report.json"]


def test_a_report_that_fails_to_write_keeps_the_earlier_one_whole(reference, tmp_path, monkeypatch):
    import act.run.files

    out = tmp_path / "report"
    assert main(["report", str(reference), "--out", str(out)]) == 0
    before = (out / "report.md").read_text()

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(act.run.files.os, "replace", disk_full)
    assert main(["report", str(reference), "--out", str(out)]) == 2
    assert (out / "report.md").read_text() == before
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


# ---- stopping is always explained (issue 19, item 9) ---------------------------------

def test_sigterm_says_which_epoch_is_checkpointed_as_ctrl_c_does(tmp_path):
    run = tmp_path / "run"
    proc = launch(tmp_path, run)
    assert wait_for_rows(proc, 2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    saved = completed(run) - 1
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == (f"act: terminated (SIGTERM); epoch {saved} is checkpointed in "
                                            f"{run / 'checkpoint.pt'}: continue with `act train --resume {run}`")


def test_a_closed_stdout_sends_the_console_to_stderr_and_the_run_finishes(reference, tmp_path):
    cmd = [sys.executable, "-m", "act", "train", f"run.out_dir={tmp_path}", "run.name=full", *ARGS]
    done = subprocess.run(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          timeout=120, preexec_fn=lambda: os.close(1))
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("act: stdout is closed; the console goes to stderr\n")
    assert "robust net (RTM) test accuracy" in done.stderr
    assert read_metrics(tmp_path / "full") == read_metrics(reference)


# ---- a resume continues the same run, or refuses (issue 19, item 5) --------------------

def test_a_killed_runs_lock_is_not_held_by_its_loader_workers(tmp_path):
    """The reference pipeline's persistent workers are forked while the run holds its lock; they
    outlive a SIGKILL of the run by seconds, and must not keep the folder locked meanwhile."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "act", "train", f"run.out_dir={tmp_path}", "run.name=run", *ARGS,
                             "pipeline.name=reference", "pipeline.workers=2"],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for_rows(proc, 1)
    workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(workers) >= 2
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)  # not communicate(): the workers hold its pipes until they end
    proc.stdout.close()
    proc.stderr.close()
    assert any(Path(f"/proc/{pid}").exists() for pid in workers)  # still there: they notice the parent later
    training.resume(run)
    assert [r["epoch"] for r in read_metrics(run)] == list(range(6))


# ---- every process of a torchrun run ends with one line, at any stage (issue 19, item 8) ----
# Two (or three) gloo processes on the CPU, started as torchrun starts them (by their
# environment) or by torchrun itself; each test case fails the run at one stage.

TWO = ["model.name=tinycnn", "optim.warmup_epochs=1", "optim.epochs=3", "run.device=cpu", "optim.batch_size=64",
       "pipeline.name=reference", "pipeline.workers=0", "run.threads=1", "run.progress=false", "data.name=arrays"]
# `python -c` of each process: `act train ...` with one function replaced (PATCH) to fail a stage.
PATCHED = "import os, signal, sys, time\nimport act.run.build, act.run.checkpoint\nfrom act.commands.cli import main\n{}\n" \
          "sys.exit(main(sys.argv[1:]))"
# Reading runs Python code throughout, where the SIGTERM handler runs at once (one long sleep
# would run it only at its end when the kernel hands the signal to one of gloo's threads).
SLOW_READ = """read = act.run.build.read_data
def slow_read(cfg):
    print("reading", flush=True)
    for _ in range(600):
        time.sleep(0.1)
    return read(cfg)
act.run.build.read_data = slow_read"""
KILLED_IN_LAST_SAVE = """save = act.run.checkpoint.save
def killed_in_last_save(path, state):
    if state["epoch"] == 2:
        path.with_name(".checkpoint.pt.tmp").write_bytes(b"half a checkpoint")
        os.kill(os.getpid(), signal.SIGKILL)
    save(path, state)
act.run.checkpoint.save = killed_in_last_save"""


def launch_ranks(args: list[str], patch: str = "", size: int = 2) -> list[subprocess.Popen]:
    from test_distributed import free_port, rank_env

    port = free_port()
    return [subprocess.Popen([sys.executable, "-c", PATCHED.format(patch), "train", *args], cwd=ROOT,
                             env={**ENV, **rank_env(rank, size, port), "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in range(size)]


def torchrun(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    from test_distributed import free_port

    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--master_port", str(free_port()), *args],
                          cwd=ROOT, env={**ENV, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=timeout)


def test_sigterm_while_the_data_are_read_ends_every_process_with_one_line(tmp_path):
    from support.tiny import tiny_data

    ranks = launch_ranks([f"data.root={tiny_data(tmp_path)}", f"run.out_dir={tmp_path}", "run.name=run", *TWO],
                         SLOW_READ)
    first = [proc.stdout.readline() for proc in ranks]  # rank 0 names its config first
    assert first[0].startswith("act train: config = ") and first[1] == "reading\n"
    assert ranks[0].stdout.readline() == "reading\n"
    for proc in ranks:  # as torchrun stops the processes of a run
        proc.send_signal(signal.SIGTERM)
    for rank, proc in enumerate(ranks):
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and err == (
            f"act: error: process {rank} of 2 stopped before training: torchrun ended it (SIGTERM), as it does when "
            "the run is stopped or another of its processes ended; no epoch is checkpointed: start the run again\n")


def test_rank_0_killed_writing_the_last_checkpoint_leaves_one_line_naming_the_epoch_on_disk(tmp_path):
    """Rank 1 ends the last epoch and waits for rank 0's checkpoint instead of naming it, or
    failing in the end-of-run bank check; the command it prints resumes the run under torchrun."""
    from support.tiny import tiny_data

    run = tmp_path / "run"
    rank0, rank1 = launch_ranks([f"data.root={tiny_data(tmp_path)}", f"run.out_dir={tmp_path}", "run.name=run", *TWO],
                                KILLED_IN_LAST_SAVE)
    rank0.communicate(timeout=120)
    _, err = rank1.communicate(timeout=60)
    assert rank0.returncode == -signal.SIGKILL and rank1.returncode == 2
    command = f"torchrun --nproc_per_node 2 -m act train --resume {run}"
    assert err.startswith("act: error: process 1 of 2 stopped in epoch 2: another process of this run died") and \
        err.endswith(f"; epoch 1 is checkpointed in {run / 'checkpoint.pt'}: continue with `{command}`\n") and \
        err.count("\n") == 1, err
    assert checkpoint.load(run / "checkpoint.pt")["epoch"] == 1
    done = torchrun(*command.split()[1:])
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["epoch"] for r in read_metrics(run)] == [0, 1, 2]


def test_a_resume_rank_0_refuses_ends_every_process_at_once_with_its_line(reference, tmp_path):
    """Under torchrun the others used to wait for rank 0 in the process group's store until
    torchrun killed them (30 s later), or failed with a traceback."""
    run = copy_run(reference, tmp_path)
    holder = lock_holder(run)
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        done = torchrun("--nproc_per_node", "2", "-m", "act", "train", "--resume", str(run), timeout=25)
    finally:
        holder.kill()
        holder.wait()
    lines = [line for line in done.stderr.splitlines() if line.startswith("act: ")]
    assert lines == [f"act: error: run folder {run} is in use by process {holder.pid}; wait for it to end"] * 2
    assert "[rank" not in done.stderr and time.monotonic() - start < 20, done.stderr[-3000:]


def test_a_resume_with_another_number_of_processes_names_the_number_not_a_batch_size(reference, tmp_path):
    """optim.batch_size=128 does not divide among 3 processes, but a resume cannot change it: the
    number of processes the checkpoint was written with is what to change."""
    ranks = launch_ranks(["--resume", str(copy_run(reference, tmp_path))], size=3)
    for proc in ranks:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and err.count("\n") == 1 and \
            "was written by a run of 1 process(es) and this one has 3; resume with 1" in err, err


def test_sigterm_to_the_process_group_stops_loader_workers_quietly(tmp_path):
    """`kill -TERM -PGID` (a scheduler ending a job) reaches the reference pipeline's workers too;
    the run says its one line and no "DataLoader worker killed by signal" traceback follows."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "act", "train", f"run.out_dir={tmp_path}", "run.name=run", *ARGS,
                             "pipeline.name=reference", "pipeline.workers=2"],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert wait_for_rows(proc, 1)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip() == (
        f"act: terminated (SIGTERM); epoch {completed(run) - 1} is checkpointed in {run / 'checkpoint.pt'}: "
        f"continue with `act train --resume {run}`"), err
