"""Several processes (torchrun, DDP; act/step/distributed.py), proven with 2 CPU processes over gloo.

Tiny runs on a written .npz (400 train, 200 test 12 x 12 images). Two launchers: the
`torch.multiprocessing.spawn` of a worker in this module, which calls the run's functions
epoch by epoch and saves what each rank holds, and `python -m torch.distributed.run`
(torchrun) or two env-launched `python -m act train` processes for the command itself.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn
from support.tiny import tiny_data

from act.config import load_config
from act.datasets import read_source
from act.errors import ActError
from act.models.registry import register
from act.run import loop as training
from act.run.build import prepare
from act.run.runtime import decide
from act.step import distributed
from pipelines import build_pipeline

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
# The reference pipeline draws each sample's views from (seed, epoch, index), so one process
# and two see the same views; the tensor pipeline draws per rank (Pipeline.view_seed).
RUN = ["data.name=arrays", "optim.warmup_epochs=1", "optim.epochs=3", "run.device=cpu", "optim.batch_size=64",
       "pipeline.name=reference", "pipeline.workers=0", "run.threads=1", "run.progress=false"]
CLOSE = ("rtm_loss", "ntm_loss", "rtm_test_acc", "ntm_test_acc")
EXACT = ("samples_seen", "selected_frac", "mining", "sel_precision", "sel_recall")
TIMING = ("epoch_seconds", "train_seconds", "images_per_s")


@register("nobn")
def no_batch_norm(num_classes: int, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    """A small net without batch norm: DDP then computes what one process computes, up to the
    order of float sums, which makes a tight comparison possible."""
    return nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(64, num_classes))


def without_timing(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank: int, size: int, port: int) -> dict:
    """What torchrun sets for each process it starts."""
    return {"WORLD_SIZE": str(size), "RANK": str(rank), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port)}


def run_epochs(rank: int, size: int, port: int, root: str, model: str, out: str) -> None:
    """One process of a run (or the only one): every epoch's record and bank into `out`."""
    if size > 1:
        os.environ.update(rank_env(rank, size, port))
    cfg = load_config(None, [*RUN, f"data.root={root}"])
    cfg.model.name = model  # a test-only model: the config's validation knows the shipped names only
    run = prepare(cfg, decide(cfg), run_dir=Path(out))
    records = []
    for epoch in range(cfg.optim.epochs):
        records.append(training.train_epoch(run, epoch, False))
        torch.save({"count": run.ctx.bank.count, "ema": run.ctx.bank.ema}, f"{out}/bank-{size}-{rank}-{epoch}.pt")
    torch.save(distributed.unwrap(run.ctx.rtm).state_dict(), f"{out}/rtm-{size}-{rank}.pt")
    Path(f"{out}/records-{size}-{rank}.json").write_text(json.dumps(records))
    distributed.leave(run.world)


@pytest.fixture(scope="module")
def nobn_runs(tmp_path_factory):
    """The same run in one process and in two (spawned), with the net without batch norm."""
    out = tmp_path_factory.mktemp("nobn")
    root = tiny_data(out)
    run_epochs(0, 1, 0, root, "nobn", str(out))
    mp.spawn(run_epochs, args=(2, free_port(), root, "nobn", str(out)), nprocs=2)
    return out


def bank(out: Path, size: int, rank: int, epoch: int) -> dict:
    return torch.load(out / f"bank-{size}-{rank}-{epoch}.pt")


def records(out: Path, size: int, rank: int = 0) -> list[dict]:
    return json.loads((out / f"records-{size}-{rank}.json").read_text())


@pytest.mark.parametrize("pipeline", ["tensor", "reference"])
@pytest.mark.parametrize("limit", [400, 397, 386])  # last global batch: 16 (8 + 8), 13 (7 + 6), 2 (2 + none)
def test_every_index_is_trained_once_per_epoch_across_ranks(tmp_path, pipeline, limit):
    source = read_source("arrays", tiny_data(tmp_path), 0, 0.0)
    source.train = source.train.head(limit)
    pipes = [build_pipeline(pipeline, source, source.train.labels, batch_size=32, device="cpu", seed=3, workers=0,
                            shard=(rank, 2)) for rank in range(2)]
    whole = build_pipeline(pipeline, source, source.train.labels, batch_size=64, device="cpu", seed=3, workers=0)
    for epoch in range(2):
        steps = [list(distributed.padded(p.train_batches(epoch), p)) for p in pipes]
        assert len(steps[0]) == len(steps[1]) == pipes[0].steps_per_epoch() == -(-limit // 64)
        seen = torch.cat([b.index for rank in steps for b in rank])
        assert torch.equal(seen.sort().values, torch.arange(limit))
        # Each step's two parts make up the batch one process trains in that step.
        for one, *two in zip(whole.train_batches(epoch), *steps):
            assert torch.equal(one.index.sort().values, torch.cat([b.index for b in two]).sort().values)


def test_the_bank_is_equal_on_both_ranks_after_every_epoch(nobn_runs):
    for epoch in range(3):
        a, b = bank(nobn_runs, 2, 0, epoch), bank(nobn_runs, 2, 1, epoch)
        assert torch.equal(a["count"], b["count"]) and torch.equal(a["ema"], b["ema"]), epoch
    assert torch.all(bank(nobn_runs, 2, 0, 0)["count"] == 1)  # the warm-up epoch trained each index once


def test_two_processes_without_batch_norm_agree_with_one_up_to_float_sums(nobn_runs):
    """Same global batches, same views, the global-batch memorisation check and means: the
    selections and counts are identical and the floats differ by their summation order only
    (gradients summed by the all-reduce, losses split in two sums): 1e-5, observed ~2e-7."""
    one, two = records(nobn_runs, 1), records(nobn_runs, 2)
    assert [without_timing(r) for r in two] == [without_timing(r) for r in records(nobn_runs, 2, 1)]  # ranks agree
    for a, b in zip(one, two):
        assert {k: a[k] for k in EXACT} == {k: b[k] for k in EXACT}
        assert all(b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-5) for k in CLOSE), (a, b)
    for epoch in range(3):
        a, b = bank(nobn_runs, 1, 0, epoch), bank(nobn_runs, 2, 0, epoch)
        assert torch.equal(a["count"], b["count"])
        assert torch.allclose(a["ema"], b["ema"], atol=1e-5)
    p1, p2 = torch.load(nobn_runs / "rtm-1-0.pt"), torch.load(nobn_runs / "rtm-2-0.pt")
    assert all(torch.allclose(p1[k], p2[k], atol=1e-5) for k in p1)


def torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(free_port()), "-m", "act", "train", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def torchrun_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("torchrun")
    done = torchrun(f"data.root={tiny_data(out)}", "model.name=tinycnn", f"run.out_dir={out}", "run.name=two", *RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


def test_torchrun_writes_one_run_folder_from_rank_0(torchrun_run):
    out, done = torchrun_run
    assert [p.name for p in out.iterdir() if p.is_dir()] == ["two"]
    summary = json.loads((out / "two" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["bank_consistent"] is True
    assert done.stdout.count("run folder:") == 1  # rank 1 prints nothing
    assert [json.loads(line)["samples_seen"] for line in (out / "two" / "metrics.jsonl").open()] == [400] * 3


def test_two_processes_with_batch_norm_stay_near_one_in_the_first_epoch(torchrun_run, tmp_path):
    """With batch norm each rank normalises its half batch (SyncBatchNorm runs on GPUs only), so
    the runs part from the first step on; the warm-up epoch's losses stay within 0.02 (observed
    0.005), its accuracies within 5 points; later epochs select differently and drift further."""
    out, _ = torchrun_run
    one = training.train(load_config(None, [f"data.root={tiny_data(out)}", "model.name=tinycnn",
                                            f"run.out_dir={tmp_path}", "run.name=one", *RUN]))
    first = [json.loads(line) for line in (out / "two" / "metrics.jsonl").open()][0]
    single = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").open()][0]
    assert first["samples_seen"] == single["samples_seen"] and one["world_size"] == 1
    assert first["rtm_loss"] == pytest.approx(single["rtm_loss"], abs=0.02)
    assert first["ntm_loss"] == pytest.approx(single["ntm_loss"], abs=0.02)
    assert abs(first["rtm_test_acc"] - single["rtm_test_acc"]) <= 5


def test_resuming_with_another_number_of_processes_is_refused(torchrun_run):
    out, _ = torchrun_run
    with pytest.raises(ActError, match=r"written by a run of 2 process\(es\) and this one has 1; resume with 2"):
        training.resume(out / "two")


def launch_rank(rank: int, port: int, args: list[str]) -> subprocess.Popen:
    """One process of a 2-process run, started as torchrun starts it (by its environment)."""
    return subprocess.Popen([sys.executable, "-m", "act", "train", *args], cwd=ROOT, env={**ENV, **rank_env(rank, 2, port)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_killed_rank_stops_the_other_with_one_line_and_resume_continues(tmp_path):
    args = [f"data.root={tiny_data(tmp_path)}", "model.name=tinycnn", f"run.out_dir={tmp_path}", "run.name=run",
            *RUN, "optim.epochs=8"]
    port = free_port()
    rank0, rank1 = launch_rank(0, port, args), launch_rank(1, port, args)
    for line in rank0.stdout:  # the first epoch's row: epoch 0 is checkpointed
        if line.split()[:1] == ["0"]:
            break
    rank1.send_signal(signal.SIGKILL)
    start = time.monotonic()
    _, err = rank0.communicate(timeout=60)
    rank1.communicate()
    assert rank0.returncode == 2 and time.monotonic() - start < 30, (rank0.returncode, err[-3000:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("act: error: process 0 of 2 stopped in epoch "), err
    assert "another process of this run died, was killed or hung" in lines[0]
    assert "is checkpointed in" in lines[0] and "--resume" in lines[0]
    done = torchrun("--resume", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["epoch"] for r in metrics] == list(range(8))
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["bank_consistent"] is True


def test_a_global_batch_that_does_not_divide_among_the_processes_is_refused():
    with pytest.raises(ActError, match="optim.batch_size=65 is the global batch and must divide among the 2"):
        distributed.rank_batch(load_config(None, ["optim.batch_size=65"]), distributed.World(0, 2))


def test_a_cells_torchrun_stopped_by_sigterm_exits_143_with_its_line_and_no_traceback(tmp_path):
    """What SLURM does to a job it stops: SIGTERM to every process of it, torchrun's agent included.
    act sweep's torchrun (act/sweep/torchrun.py) then ends as a stopped act train does: 143, the
    last epoch on disk, a line instead of torchrun's traceback."""
    args = [f"data.root={tiny_data(tmp_path)}", "model.name=tinycnn", f"run.out_dir={tmp_path}", "run.name=run",
            *RUN, "optim.epochs=100"]
    process = subprocess.Popen([sys.executable, "-m", "act.sweep.torchrun", "--nproc_per_node", "2", "--master_port",
                                str(free_port()), "-m", "act", "train", *args], cwd=ROOT, env=ENV, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    for line in process.stdout:  # the first epoch's row: epoch 0 is checkpointed
        if line.split()[:1] == ["0"]:
            break
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err[-3000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "torchrun: stopped by SIGTERM", err[-3000:]
    assert "is checkpointed in" in err and (tmp_path / "run" / "checkpoint.pt").is_file()
