"""`act sweep`: a table of tiny demo runs (digits, tinycnn, CPU) run to its report, rerun, killed
and rerun, refused, and run through submitit's local executor with a task preempted mid-run."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from act.commands.cli import main
from act.commands.report import report
from act.run.state import is_locked
from act.sweep.spec import check_cells, read_sweep

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")
TINY = {"optim.epochs": "3", "optim.warmup_epochs": "1", "optim.lr_decay": "cosine:1,5e-4,3",
        "data.train_limit": "200", "data.test_limit": "100", "run.threads": "1", "run.plots": "false"}
# Runs slow enough (epochs of 600 samples) that a kill lands between their first and last epoch.
SLOWER = {**TINY, "optim.epochs": "6", "optim.lr_decay": "cosine:1,5e-4,6", "data.train_limit": "600"}


def write_sweep(folder: Path, grid: dict, fixed: dict = TINY) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": str(ROOT / "configs" / "demo.yaml"), "grid": grid, "set": fixed}))
    return path


def sweep(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "act", "sweep", *map(str, args)], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def epochs(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines()] if path.is_file() else []


def wait_for_an_epoch(runs: Path, controller: subprocess.Popen) -> Path:
    """The first run folder with an epoch done and the run not finished, while the sweep runs."""
    while controller.poll() is None:
        for run in sorted(runs.glob("*")) if runs.is_dir() else []:
            if epochs(run) and not (run / "summary.json").exists():
                return run
        time.sleep(0.02)
    raise AssertionError(controller.stdout.read())


def wait_unlocked(runs: Path) -> None:
    deadline = time.monotonic() + 60
    while any(is_locked(run) for run in runs.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)


def modified(runs: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in runs.rglob("*") if p.name != "console.log"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 2 x 2 sweep (noise 20/40 % x seeds 0/1) run to its end, two runs at a time."""
    folder = tmp_path_factory.mktemp("grid")
    path = write_sweep(folder, {"data.noise.closeset_ratio": ["0.2", "0.4"], "run.seed": ["0", "1"]})
    done = subprocess.run([sys.executable, "-m", "act", "sweep", str(path), "--out", str(folder / "out"), "--jobs",
                           "2"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return path, folder / "out", done.stdout


def test_a_2x2_sweep_finishes_4_runs_and_reports_2_groups_of_2(finished):
    _, out, console = finished
    runs = sorted((out / "runs").iterdir())
    assert [run.name for run in runs] == ["demo-sym20-seed0", "demo-sym20-seed1",
                                          "demo-sym40-seed0", "demo-sym40-seed1"]
    assert all(epochs(run) == [0, 1, 2] and (run / "summary.json").is_file() for run in runs)
    assert all("act sweep: act train ended with exit code 0" in (run / "console.log").read_text() for run in runs)
    groups = json.loads(report([str(out / "runs")], "json"))["groups"]
    assert [(g["setting"], g["n"]) for g in groups] == [("digits sym20", 2), ("digits sym40", 2)]
    assert "(n=2)" in (out / "report" / "report.md").read_text()
    assert console.count("finished] demo-") == 4


def test_rerunning_a_finished_sweep_trains_nothing(finished, capsys, monkeypatch):
    path, out, _ = finished
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    before = {p: t for p, t in modified(out / "runs").items()}
    assert main(["sweep", str(path), "--out", str(out), "--jobs", "2"]) == 0
    assert modified(out / "runs") == before
    assert "0 to run" in capsys.readouterr().out
    assert all((run / "console.log").read_text().count("act sweep: attempt") == 1 for run in (out / "runs").iterdir())


def test_another_sweep_or_other_overrides_in_a_sweep_folder_are_refused_in_one_line(finished, tmp_path, capsys):
    path, out, _ = finished
    before = modified(out)
    assert main(["sweep", str(path), "--out", str(out), "optim.lr=0.05"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "optim.lr=0.02, here 0.05" in err and "another --out" in err
    other = write_sweep(tmp_path, {"run.seed": ["0", "1"]})
    assert main(["sweep", str(other), "--out", str(out)]) == 2
    assert "which has no cell demo-seed0" in capsys.readouterr().err
    assert modified(out) == before


def test_an_invalid_cell_is_refused_naming_it_and_its_key_before_any_folder_exists(tmp_path, capsys):
    path = write_sweep(tmp_path, {"optim.lr": ["0.01", "-1"]})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "act: error: cell demo-lr-1: optim.lr=-1.0 must be >= 0"
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A sweep of 3 seeds, 2 runs at a time, its controller SIGKILLed once a run has an epoch: its
    runs stop (SIGTERM when their parent dies) and the third was never started."""
    folder = tmp_path_factory.mktemp("killed")
    path = write_sweep(folder, {"run.seed": ["0", "1", "2"]}, SLOWER)
    controller = sweep(path, "--out", folder / "out", "--jobs", "2")
    wait_for_an_epoch(folder / "out" / "runs", controller)
    controller.send_signal(signal.SIGKILL)
    controller.wait()
    wait_unlocked(folder / "out" / "runs")
    return path, folder / "out"


def test_status_of_a_half_done_sweep_has_one_row_per_cell(killed, capsys):
    _, out = killed
    assert main(["sweep", "--status", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"sweep {killed[0]} in {out}: 3 cells (")
    assert lines[1].split() == ["cell", "RTM", "last-10", "state"]
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[2:]}
    assert sorted(rows) == ["demo-seed0", "demo-seed1", "demo-seed2"]
    assert rows["demo-seed2"] == ["-", "queued"]
    stopped = [state for _, state in rows.values() if state.startswith("stopped after ")]
    assert stopped and all(state.endswith("of 6 epochs") for state in stopped)


def test_a_killed_sweep_rerun_finishes_every_cell_exactly_once(killed, tmp_path):
    path, first = killed
    out = tmp_path / "out"
    shutil.copytree(first, out)
    rerun = sweep(path, "--out", out, "--jobs", "2")
    console, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, console
    runs = sorted((out / "runs").iterdir())
    assert [run.name for run in runs] == ["demo-seed0", "demo-seed1", "demo-seed2"]
    for run in runs:
        log = (run / "console.log").read_text()
        assert epochs(run) == list(range(6)) and log.count("ended with exit code 0") == 1, log
    assert any("resuming" in (run / "console.log").read_text() for run in runs)


def test_submitit_local_runs_a_sweep_and_a_preempted_task_is_requeued_and_resumes(tmp_path):
    path = write_sweep(tmp_path, {"run.seed": ["0", "1"]}, SLOWER)
    controller = sweep(path, "--out", tmp_path / "out", "--executor", "submitit-local", "--jobs", "2")
    run = wait_for_an_epoch(tmp_path / "out" / "runs", controller)
    trainer = int((run / ".lock").read_text())
    task = int(Path(f"/proc/{trainer}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its parent
    os.kill(task, signal.SIGUSR2)  # what SLURM sends before a preemption or the time limit
    console, _ = controller.communicate(timeout=300)
    assert controller.returncode == 0, console
    log = (run / "console.log").read_text()
    assert "preempted or out of time: the task is requeued" in log and "resuming" in log, log
    for done in (tmp_path / "out" / "runs").iterdir():
        assert epochs(done) == list(range(6)) and (done / "summary.json").is_file()


def test_slurm_options_become_the_job_arrays_sbatch_lines(tmp_path, monkeypatch):
    from act.sweep.executors import make_submitit

    for tool in ("srun", "sbatch"):  # stand-ins: no cluster here
        (tmp_path / tool).write_text("#!/bin/sh\nexit 0\n")
        (tmp_path / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    executor = make_submitit("slurm", tmp_path / "submitit", 240, "gpu", 1, {"account": "proj"}, 8)
    lines = executor._make_submission_file_text("true", "uid").splitlines()
    for line in ("--partition=gpu", "--time=240", "--gpus-per-node=1", "--account=proj", "--signal=USR2@90"):
        assert f"#SBATCH {line}" in lines


def test_slurm_without_a_time_limit_is_refused(tmp_path, capsys):
    path = write_sweep(tmp_path, {"run.seed": ["0"]})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--executor", "slurm"]) == 2
    assert "--slurm-time" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_pack_of_cells_that_each_run_under_torchrun_is_refused(tmp_path, capsys):
    path = write_sweep(tmp_path, {"run.seed": ["0", "1"]})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--executor", "slurm", "--slurm-time", "5",
                 "--slurm-gpus-per-task", "2", "--pack", "2"]) == 2
    assert "--pack" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_sweep_names_its_table_and_its_cells_validate(path):
    assert path.read_text().startswith("# ")
    table = read_sweep(path, ["data.root=/somewhere", "model.pretrained=/weights/resnet50.pth"])
    assert len(check_cells(table, Path("/nowhere/runs"), machine=True)) == len(table.cells) >= 4


def test_a_diverged_cell_stops_alone_is_told_by_status_and_not_rerun(tmp_path, capsys):
    """A run whose loss turns NaN writes diverged.json (act/run/loop.py); the sweep goes on with
    the others, exits 1, --status names the epoch, and a rerun leaves the cell as it is."""
    path = write_sweep(tmp_path, {"optim.lr1": ["0.08", "1e30"]})
    out = tmp_path / "out"
    first = subprocess.run([sys.executable, "-m", "act", "sweep", str(path), "--out", str(out)], cwd=ROOT, env=ENV,
                           capture_output=True, text=True)
    assert first.returncode == 1, first.stdout + first.stderr
    assert main(["sweep", "--status", str(out)]) == 0
    rows = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines()[2:])
    assert sorted(rows) == ["demo-lr10.08", "demo-lr11e+30"], rows
    assert "finished" in rows["demo-lr10.08"]
    assert "diverged: training diverged in epoch 1" in rows["demo-lr11e+30"], rows
    diverged = out / "runs" / "demo-lr11e+30" / "diverged.json"
    before = diverged.stat().st_mtime_ns
    again = subprocess.run([sys.executable, "-m", "act", "sweep", str(path), "--out", str(out)], cwd=ROOT, env=ENV,
                           capture_output=True, text=True)
    assert again.returncode == 1 and diverged.stat().st_mtime_ns == before


def test_pack_groups_the_cells_that_may_share_a_step_and_says_why_the_others_run_alone(tmp_path):
    """--pack K: cells of one pack_key (act/pack/compat.py) in packs of up to K, in the sweep's
    order; a cell of another model or of fp16 alone, its reason in DIR/packs/plan.json."""
    from act.commands.sweep import Packer

    path = write_sweep(tmp_path, {"run.seed": ["0", "1", "2"], "data.noise.closeset_ratio": ["0.2", "0.4"]})
    sweep = read_sweep(path, [])
    configs = check_cells(sweep, tmp_path / "out" / "runs", machine=False)
    odd = sweep.cells[2]
    configs[odd.name].run.amp = "fp16"
    configs[sweep.cells[5].name].optim.lr = 0.5
    jobs = Packer(configs, 2, tmp_path / "out").jobs(sweep.cells)
    assert [[cell.name for cell in job.cells] for job in jobs] == [
        [odd.name], [sweep.cells[0].name, sweep.cells[1].name], [sweep.cells[3].name, sweep.cells[4].name],
        [sweep.cells[5].name]]
    plan = json.loads((tmp_path / "out" / "packs" / "plan.json").read_text())
    assert plan[odd.name].startswith("alone: run.amp=fp16")
    assert plan[sweep.cells[5].name] == "alone: no other cell shares its step"
    assert plan[sweep.cells[0].name] == plan[sweep.cells[1].name] == f"pack {sweep.cells[0].name}+1"
    configs[sweep.cells[5].name].optim.lr = configs[sweep.cells[0].name].optim.lr
    Packer(configs, 2, tmp_path / "out").jobs(sweep.cells)
    plan = json.loads((tmp_path / "out" / "packs" / "plan.json").read_text())
    assert plan[sweep.cells[5].name] == "alone: left over from packs of 2 (5 cells share its step)"
    assert [job.name for job in Packer(configs, 1, tmp_path / "out").jobs(sweep.cells)] == [c.name for c in sweep.cells]
    assert not (tmp_path / "out" / "packs" / "plan.json").exists()  # --pack 1 again: no stale pack column


def test_a_packed_sweep_trains_its_cells_in_one_process_each_in_its_own_folder(tmp_path, capsys):
    """--pack 4 on the 2 x 2 sweep: one `act train --pack` process, four ordinary run folders
    (summary.json's `packed` names the pack), --status shows the pack, a rerun trains nothing."""
    path = write_sweep(tmp_path, {"data.noise.closeset_ratio": ["0.2", "0.4"], "run.seed": ["0", "1"]})
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "act", "sweep", str(path), "--out", str(out), "--pack", "4"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 4 and all(epochs(run) == [0, 1, 2] for run in runs)
    pack = "demo-sym20-seed0+3"
    assert sorted(p.name for p in (out / "packs").iterdir()) == [f"{pack}.log", f"{pack}.yaml", "plan.json"]
    for run in runs:
        packed = json.loads((run / "summary.json").read_text())["packed"]
        assert packed["k"] == 4 and sorted(packed["members"]) == [r.name for r in runs]
        assert f"its console: {out / 'packs' / pack}.log" in (run / "console.log").read_text()
    assert main(["sweep", "--status", str(out)]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert len(rows) == 4 and all(f"pack {pack}" in row and row.endswith("finished") for row in rows)
    before = modified(out / "runs")
    again = subprocess.run([sys.executable, "-m", "act", "sweep", str(path), "--out", str(out), "--pack", "4"],
                           cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert again.returncode == 0 and modified(out / "runs") == before


def test_pack_leaves_a_cell_that_failed_alone_and_packs_cells_at_the_same_epoch(tmp_path):
    """A cell whose last attempt failed would fail its pack again: it runs alone; a stopped cell
    packs with the cells at its epoch, not with new ones (they would train alone up to it first)."""
    from act.commands.sweep import Packer
    from act.sweep.state import CellState

    path = write_sweep(tmp_path, {"run.seed": ["0", "1", "2", "3", "4"]})
    sweep = read_sweep(path, [])
    configs = check_cells(sweep, tmp_path / "out" / "runs", machine=False)
    names = [cell.name for cell in sweep.cells]
    states = {names[0]: CellState("failed", "failed: checkpoint.pt is corrupt", 1, 3),
              names[1]: CellState("stopped", "stopped after 2 of 3 epochs", 2, 3),
              names[2]: CellState("stopped", "stopped after 2 of 3 epochs", 2, 3),
              names[3]: CellState("queued", "queued", 0, 3), names[4]: CellState("queued", "queued", 0, 3)}
    jobs = Packer(configs, 4, tmp_path / "out").jobs(sweep.cells, states)
    assert [[cell.name for cell in job.cells] for job in jobs] == [[names[0]], names[1:3], names[3:5]]
    plan = json.loads((tmp_path / "out" / "packs" / "plan.json").read_text())
    assert plan[names[0]] == "alone: its last attempt failed (checkpoint.pt is corrupt)"


def test_a_rerun_passes_changed_display_keys_and_moved_data_to_a_resume(tmp_path):
    from act.sweep.executors import train_command
    from act.sweep.spec import Cell

    path = write_sweep(tmp_path, {"run.seed": ["0"]})
    cell = read_sweep(path, [])
    runs = tmp_path / "out" / "runs"
    assert main(["train", "--config", str(cell.cells[0].base), *cell.cells[0].overrides,
                 *cell.cells[0].folder_keys(runs), "optim.epochs=1"]) == 0
    again = Cell(cell.cells[0].name, cell.cells[0].base, (*cell.cells[0].overrides, "run.progress=true",
                                                          "run.plots=true"))
    argv = train_command(again, runs)
    assert argv[3:6] == ["train", "--resume", str(runs / again.name)]
    assert argv[6:] == ["run.progress=true", "run.plots=true"]


def test_amp_auto_that_this_machine_makes_fp16_keeps_a_cell_out_of_packs(monkeypatch):
    """run.amp=auto is fp16 with loss scaling on a GPU without bf16: such a run cannot pack there."""
    from types import SimpleNamespace

    from act.config import load_config
    from act.pack import compat
    from act.run import runtime

    cfg = load_config(None, ["run.amp=auto"])
    monkeypatch.setattr(runtime, "decide", lambda cfg: SimpleNamespace(grad_scaler=True))
    assert compat.why_alone(cfg) is None  # without the machine (a SLURM sweep's controller)
    assert compat.why_alone(cfg, machine=True).startswith("run.amp=auto is fp16 with loss scaling on this GPU")
    monkeypatch.setattr(runtime, "decide", lambda cfg: SimpleNamespace(grad_scaler=False))
    assert compat.why_alone(cfg, machine=True) is None


@pytest.mark.parametrize("given, said", [
    (["--slurm-nodes", "2"], "--slurm-nodes is an option of --executor slurm"),
    (["--executor", "slurm", "--slurm-time", "5", "--slurm-nodes", "0"], "--slurm-nodes 0 must be at least 1"),
    (["--executor", "slurm", "--slurm-time", "5", "--slurm-nodes", "2", "--pack", "2"],
     "--slurm-nodes 2 runs each cell under torchrun on each node; give one of them"),
    (["--executor", "slurm", "--slurm-time", "5", "--slurm-arg", "nodes=2"],
     "--slurm-arg nodes=2: act sweep sets sbatch's --nodes itself (use --slurm-nodes)"),
    (["--executor", "slurm", "--slurm-time", "5", "--slurm-arg", "gpus_per_node=2"],
     "sets sbatch's --gpus-per-node itself (use --slurm-gpus-per-task)"),
    (["--executor", "slurm", "--slurm-time", "5", "--slurm-arg", "gres=gpu:a100:2"],
     "--slurm-arg gres=gpu:a100:2: act sweep asks for each job's GPUs itself (--gpus-per-node); use "
     "--slurm-gpus-per-task"),
], ids=["local", "zero", "pack", "nodes-arg", "gpus-arg", "gres-arg"])
def test_slurm_options_that_could_not_be_honoured_are_refused_in_one_line(tmp_path, capsys, given, said):
    path = write_sweep(tmp_path, {"run.seed": ["0", "1"]})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), *given]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_a_job_of_several_nodes_asks_sbatch_for_them_with_one_task_each(tmp_path, monkeypatch):
    from act.sweep.executors import make_submitit

    for tool in ("srun", "sbatch"):
        (tmp_path / tool).write_text("#!/bin/sh\nexit 0\n")
        (tmp_path / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    executor = make_submitit("slurm", tmp_path / "submitit", 60, None, 4, {}, None, nodes=2)
    lines = executor._make_submission_file_text("true", "uid").splitlines()
    for line in ("--nodes=2", "--ntasks-per-node=1", "--gpus-per-node=4"):
        assert f"#SBATCH {line}" in lines


class Ended:
    """A process that has ended with `code` (Task.run polls it)."""

    def __init__(self, code: int = 0):
        self.code = code

    def poll(self) -> int:
        return self.code


def test_every_node_of_a_cell_runs_the_act_train_the_first_node_chose(tmp_path, monkeypatch):
    """The first node chooses a start (no run folder yet); a second node that looks after the run
    began (config.yaml written) still runs that start, not a resume, with its own node rank."""
    from act.sweep import executors
    from act.sweep.spec import Cell

    runs = tmp_path / "out" / "runs"
    cell = Cell("demo-seed0", ROOT / "configs" / "demo.yaml", ("run.seed=0",))
    started = []
    monkeypatch.setattr(executors, "start", lambda argv, log, **kw: started.append(argv) or Ended())
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    for name in ("SLURM_RESTART_COUNT", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    for node in ("0", "1"):
        monkeypatch.setenv("SLURM_NODEID", node)
        assert executors.Task(runs, tmp_path, 1, nodes=2)(executors.Job((cell,))) == 0
        (runs / cell.name / "config.yaml").write_text("")  # as the first node's act train would write it
    plan = json.loads((tmp_path / "out" / "submitit" / "nodes" / "7.0.json").read_text())
    assert plan["run"] is True and plan["train"][3:5] == ["train", "--config"] and plan["port"] > 0
    first, second = started
    assert first[3:8] == ["--nnodes=2", "--node_rank=0", "--nproc_per_node=1", f"--master_addr={plan['host']}",
                          f"--master_port={plan['port']}"]
    assert second[4] == "--node_rank=1" and first[:4] + first[5:] == second[:4] + second[5:]
    assert "act sweep: attempt" in (runs / cell.name / "console.log").read_text()


def test_a_node_follows_the_first_nodes_word_not_to_run_and_fails_without_its_word(tmp_path, monkeypatch, capsys):
    from act.sweep import executors
    from act.sweep.spec import Cell

    runs = tmp_path / "out" / "runs"
    cell = Cell("demo-seed0", ROOT / "configs" / "demo.yaml", ("run.seed=0",))
    monkeypatch.setattr(executors, "start", lambda *a, **kw: pytest.fail("nothing may start"))
    monkeypatch.setattr(executors, "NODES_WAIT_S", 0.3)
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_NODEID", "1")
    for name in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    plans = tmp_path / "out" / "submitit" / "nodes"
    plans.mkdir(parents=True)
    (plans / "7.2.json").write_text(json.dumps({"run": False}))
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    assert executors.Task(runs, tmp_path, 1, nodes=2)(executors.Job((cell,))) is None
    monkeypatch.setenv("SLURM_RESTART_COUNT", "3")  # an attempt whose first node wrote nothing
    assert executors.Task(runs, tmp_path, 1, nodes=2)(executors.Job((cell,))) == executors.TASK_FAILED
    assert "node 1: the first node of job 7.3 wrote no " in capsys.readouterr().out


def test_a_global_batch_that_the_jobs_processes_cannot_share_is_refused_before_anything_is_submitted(tmp_path, capsys,
                                                                                                   monkeypatch):
    for tool in ("srun", "sbatch"):  # stand-ins that fail if called: nothing may be submitted
        (tmp_path / tool).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    path = write_sweep(tmp_path, {"run.seed": ["0", "1"]}, {**TINY, "optim.batch_size": "6"})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--executor", "slurm", "--slurm-time", "5",
                 "--slurm-nodes", "2", "--slurm-gpus-per-task", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("act: error: cell demo-seed0: optim.batch_size=6 is the global batch and must divide among "
                          "the 4 processes of this run; use a multiple of 4"), err
    assert not (tmp_path / "out").exists()


def test_a_first_node_that_fails_before_it_knows_still_tells_the_others_not_to_run(tmp_path, monkeypatch):
    from act.sweep import executors
    from act.sweep.spec import Cell

    def broken(*args):
        raise OSError("the run folder cannot be read")

    monkeypatch.setattr(executors, "read_state", broken)
    monkeypatch.setenv("SLURM_NODEID", "0")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    cell = Cell("demo-seed0", ROOT / "configs" / "demo.yaml", ("run.seed=0",))
    with pytest.raises(OSError):
        executors.Task(tmp_path / "out" / "runs", tmp_path, 1, nodes=2)(executors.Job((cell,)))
    plan = tmp_path / "out" / "submitit" / "nodes" / "5_1.2.json"  # named as act sweep names the job: 5_1
    assert json.loads(plan.read_text()) == {"run": False}


def test_a_new_submission_forgets_the_words_of_jobs_slurm_no_longer_holds(tmp_path):
    from act.sweep.executors import NODES, forget_plans

    (tmp_path / NODES).mkdir()
    for name in ("5_0.0.json", "5_0.1.json", "5_1.0.json", "12.0.json"):
        (tmp_path / NODES / name).write_text("{}")
    forget_plans(tmp_path, {"5_1"})
    assert sorted(p.name for p in (tmp_path / NODES).iterdir()) == ["5_1.0.json"]
