"""`act sweep --executor slurm` on a real SLURM of two nodes on this machine (tests/support/slurm.py):
a sweep as one job array, a run out of time requeued, an administrator's `scontrol requeue`
followed to the run's end, `--status` with SLURM's view, a cancelled task, reruns, cells of two
GPUs and of two nodes (torchrun). Tiny demo runs on the CPU; the
cluster has no accounting (sacct fails), as many small ones. Skipped where slurm-wlm and munge are
not installed or we are not root (CI installs them: .ci/run)."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from act.sweep.slurm import Jobs
from support.slurm import Cluster, missing

pytestmark = [pytest.mark.slurm, pytest.mark.skipif(missing() is not None, reason=missing() or "")]

ROOT = Path(__file__).resolve().parent.parent
TINY = {"optim.epochs": "3", "optim.warmup_epochs": "1", "optim.lr_decay": "cosine:1,5e-4,3",
        "data.train_limit": "200", "data.test_limit": "100", "run.threads": "1", "run.plots": "false"}
# Runs of some 10 s, so that a requeue or a cancel lands between their first and last epoch.
SLOW = {**TINY, "optim.epochs": "10", "optim.lr_decay": "cosine:1,5e-4,10", "data.train_limit": "1000"}
# A run of about a minute alone, longer than a 1-minute limit's warning (sent 15 to 45 s after it starts).
LONG = {**SLOW, "optim.epochs": "80", "optim.lr_decay": "cosine:1,5e-4,80"}
SLURM = ("--executor", "slurm", "--slurm-gpus-per-task", "0")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    yield cluster
    cluster.stop()


def write_sweep(folder: Path, seeds: list[str], fixed: dict) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": str(ROOT / "configs" / "demo.yaml"), "grid": {"run.seed": seeds},
                                    "set": fixed}))
    return path


def sweep(cluster: Cluster, *args) -> subprocess.Popen:
    env = dict(cluster.env, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.Popen([sys.executable, "-m", "act", "sweep", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(controller: subprocess.Popen) -> str:
    console, _ = controller.communicate(timeout=300)
    return console


def epochs(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines()] if path.is_file() else []


def status(cluster: Cluster, out: Path) -> str:
    return subprocess.run([sys.executable, "-m", "act", "sweep", "--status", str(out)], cwd=ROOT, check=True,
                          env=dict(cluster.env, PYTHONPATH=str(ROOT)), capture_output=True, text=True).stdout


def wait_for(what, controller: subprocess.Popen, timeout: float = 120.0):
    """`what()` once it is true, while the sweep runs."""
    deadline = time.monotonic() + timeout
    while not (found := what()):
        if controller.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"never came: {what.__doc__}\n{controller.stdout.read() if controller.stdout else ''}")
        time.sleep(0.1)
    return found


def job_of(out: Path, cell: str) -> str:
    return Jobs(out / "submitit").job(cell)


@pytest.fixture(scope="module")
def two_cells(cluster, tmp_path_factory):
    """A 2-cell sweep run to its end."""
    folder = tmp_path_factory.mktemp("two")
    controller = sweep(cluster, write_sweep(folder, ["0", "1"], TINY), "--out", folder / "out", "--slurm-time", "5",
                       *SLURM)
    return folder / "out", finish(controller), controller.returncode


def test_a_two_cell_sweep_runs_as_one_job_array_and_writes_its_report(two_cells):
    out, console, code = two_cells
    assert code == 0, console
    arrays = {job_of(out, cell).split("_")[0] for cell in ("demo-seed0", "demo-seed1")}
    assert len(arrays) == 1, arrays
    assert "| 3/3 |" in (out / "report" / "report.md").read_text()
    assert all(epochs(out / "runs" / cell) == [0, 1, 2] for cell in ("demo-seed0", "demo-seed1"))


def test_a_cluster_without_accounting_prints_no_sacct_warnings(two_cells):
    _, console, _ = two_cells
    assert "sacct" not in console and "accounting" not in console, console


def test_a_run_out_of_time_is_requeued_and_trains_each_epoch_once(cluster, tmp_path):
    controller = sweep(cluster, write_sweep(tmp_path, ["0"], LONG), "--out", tmp_path / "out", "--slurm-time", "1",
                       *SLURM)
    console = finish(controller)
    assert controller.returncode == 0, console
    run = tmp_path / "out" / "runs" / "demo-seed0"
    assert "the task is requeued" in (run / "console.log").read_text()
    assert epochs(run) == list(range(80))


@pytest.fixture(scope="module")
def requeued(cluster, tmp_path_factory):
    """A 2-cell sweep, one job at a time, whose first task an administrator requeues mid-run
    (`scontrol requeue`: SIGTERM, and SLURM queues the job again); --status before and after."""
    folder = tmp_path_factory.mktemp("requeued")
    out = folder / "out"
    controller = sweep(cluster, write_sweep(folder, ["0", "1"], SLOW), "--out", out, "--slurm-time", "5", "--jobs",
                       "1", *SLURM)

    def first_epoch():
        """an epoch of demo-seed0"""
        return epochs(out / "runs" / "demo-seed0")

    wait_for(first_epoch, controller)
    before = status(cluster, out)
    cluster.run("scontrol", "requeue", job_of(out, "demo-seed0"))

    def requeued_status():
        """--status showing the requeued job queued or running again"""
        said = status(cluster, out)
        row = next(line for line in said.splitlines() if line.startswith("demo-seed0"))
        return said if "requeued 1 time" in row and ("pending: " in row or "running on node " in row) else None

    after = wait_for(requeued_status, controller)
    return out, finish(controller), controller.returncode, before, after


def test_a_requeued_task_is_followed_until_its_run_finishes(requeued):
    out, console, code, _, _ = requeued
    assert code == 0, console
    assert "stopped after" not in console
    assert all(epochs(out / "runs" / cell) == list(range(10)) for cell in ("demo-seed0", "demo-seed1"))
    assert (out / "report" / "report.md").read_text().count("| 10/10 |") == 2


def test_status_shows_the_job_and_slurms_state_of_running_and_pending_cells(requeued):
    _, _, _, before, _ = requeued
    rows = dict(line.split(None, 1) for line in before.splitlines()[2:])
    assert rows["demo-seed0"].split(None, 1)[1].startswith("running on node ")
    assert "pending: JobArrayTaskLimit (job " in rows["demo-seed1"]


def test_status_shows_a_requeued_job_and_how_often_it_was_requeued(requeued):
    _, _, _, _, after = requeued
    row = next(line for line in after.splitlines() if line.startswith("demo-seed0"))
    assert "requeued 1 time" in row and ("pending: " in row or "running on node " in row), after


@pytest.fixture(scope="module")
def cancelled(cluster, tmp_path_factory):
    """A 2-cell sweep whose second task is cancelled mid-run (scancel), then the same command again."""
    folder = tmp_path_factory.mktemp("cancelled")
    out = folder / "out"
    args = (write_sweep(folder, ["0", "1"], SLOW), "--out", out, "--slurm-time", "5", *SLURM)
    controller = sweep(cluster, *args)

    def an_epoch():
        """an epoch of demo-seed1"""
        return epochs(out / "runs" / "demo-seed1")

    wait_for(an_epoch, controller)
    cluster.run("scancel", job_of(out, "demo-seed1"))
    first = finish(controller), controller.returncode
    rerun = sweep(cluster, *args)
    return out, first, (finish(rerun), rerun.returncode)


def test_a_cancelled_task_is_reported_cancelled_with_the_command_that_continues_it(cancelled):
    out, (console, code), _ = cancelled
    assert code == 1, console
    line = next(line for line in console.splitlines() if "demo-seed1: " in line)
    assert "cancelled (job " in line and "`act sweep " in line and f"--out {out}" in line, line
    assert "1 cancelled" in console.splitlines()[-1] or "1 cancelled" in console, console


def test_a_rerun_after_a_cancel_finishes_the_cancelled_run(cancelled):
    out, _, (console, code) = cancelled
    assert code == 0, console
    assert all(epochs(out / "runs" / cell) == list(range(10)) for cell in ("demo-seed0", "demo-seed1"))
    assert "resuming" in (out / "runs" / "demo-seed1" / "console.log").read_text()


def test_a_rerun_while_the_jobs_are_queued_follows_them_and_submits_nothing(cluster, tmp_path):
    out = tmp_path / "out"
    args = (write_sweep(tmp_path, ["0", "1"], TINY), "--out", out, "--slurm-time", "5", "--jobs", "1", *SLURM)
    first = sweep(cluster, *args)

    def submitted():
        """the job array's record"""
        return (out / "submitit" / "jobs.json").is_file()

    wait_for(submitted, first)
    jobs = {cell: job_of(out, cell) for cell in ("demo-seed0", "demo-seed1")}
    first.send_signal(signal.SIGTERM)  # the controller stops; its SLURM jobs go on
    assert "its SLURM jobs go on" in finish(first)
    rerun = sweep(cluster, *args)
    console = finish(rerun)
    assert rerun.returncode == 0, console
    assert {cell: job_of(out, cell) for cell in jobs} == jobs
    assert "0 to run" in console.splitlines()[0] and "following the SLURM jobs of " in console, console
    assert all(epochs(out / "runs" / cell) == [0, 1, 2] for cell in jobs)


def test_a_cell_of_two_gpus_runs_under_torchrun_with_the_bank_equal_on_both_ranks(cluster, tmp_path):
    fixed = {**TINY, "run.device": "cpu", "pipeline.workers": "0"}  # the cluster's 2 GPUs are names only
    controller = sweep(cluster, write_sweep(tmp_path, ["0"], fixed), "--out", tmp_path / "out", "--slurm-time", "5",
                       "--executor", "slurm", "--slurm-gpus-per-task", "2")
    console = finish(controller)
    assert controller.returncode == 0, console
    run = tmp_path / "out" / "runs" / "demo-seed0"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["bank_consistent"] is True
    assert ": torchrun --standalone --nproc_per_node=2 -m act train " in (run / "console.log").read_text()


TWO_RANKS = {"run.device": "cpu", "pipeline.workers": "0"}  # gloo on the CPU: the cluster's GPUs are names only


@pytest.fixture(scope="module")
def two_nodes(cluster, tmp_path_factory):
    """A cell of two nodes (one rank on each), requeued by an administrator after its first epoch."""
    folder = tmp_path_factory.mktemp("nodes")
    out = folder / "out"
    controller = sweep(cluster, write_sweep(folder, ["0"], {**SLOW, **TWO_RANKS}), "--out", out, "--slurm-time", "5",
                       *SLURM, "--slurm-nodes", "2")
    run = out / "runs" / "demo-seed0"

    def an_epoch():
        """an epoch of demo-seed0"""
        return epochs(run)

    wait_for(an_epoch, controller)
    cluster.run("scontrol", "requeue", job_of(out, "demo-seed0"))
    return out, run, finish(controller), controller.returncode


def test_a_cell_of_two_nodes_runs_torchrun_on_each_node_with_the_bank_equal_on_both_ranks(cluster, two_nodes):
    out, run, console, code = two_nodes
    assert code == 0, console
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["bank_consistent"] is True
    job = job_of(out, "demo-seed0")
    assert "NodeList=act[1-2]" in cluster.run("scontrol", "show", "job", job)
    first = (run / "console.log").read_text()
    assert ": torchrun --nnodes=2 --node_rank=0 --nproc_per_node=1 --master_addr=" in first, first
    second = (out / "submitit" / f"{job}_1_log.out").read_text()
    assert "act sweep: node 1: torchrun --nnodes=2 --node_rank=1 --nproc_per_node=1 --master_addr=" in second, second


def test_a_requeued_cell_of_two_nodes_resumes_on_both_and_trains_each_epoch_once(two_nodes):
    out, run, console, code = two_nodes
    assert code == 0, console
    assert epochs(run) == list(range(10))
    log = (run / "console.log").read_text()
    attempts = [line for line in log.splitlines() if "act sweep: attempt" in line]
    assert len(attempts) == 2 and "--node_rank=0" in attempts[1] and " act train --resume " in attempts[1], attempts
    assert "act sweep: act train ended with exit code 143" in log and "Traceback" not in log, log
    assert log.strip().splitlines()[-1] == "act sweep: act train ended with exit code 0" and "failed" not in log, log
    job = job_of(out, "demo-seed0")
    assert sorted(p.name for p in (out / "submitit" / "nodes").iterdir()) == [f"{job}.0.json", f"{job}.1.json"]
    second = (out / "submitit" / f"{job}_1_log.out").read_text()
    assert second.count("act sweep: node 1: ") == 2 and "--resume" in second.split("act sweep: node 1: ")[2], second
