"""act sweep's heartbeat (act/commands/sweep.py, Controller.draw): where its output is no terminal
(a log file, SLURM's output), a line every HEARTBEAT_SECONDS while cells run, with the runs
running and finished, the epochs done and the ETA, read from the run folders as --status reads
them. The folders here are written by hand: a running run (its lock held), a finished one and a
queued cell."""
import io
import json
import re
from types import SimpleNamespace

import pytest

from act.commands import sweep as sweep_command
from act.config import Config, dump_yaml
from act.run.folder import CONFIG, CONSOLE, METRICS, SUMMARY, acquire, release
from act.sweep.spec import RUNS
from act.sweep.state import ATTEMPT, exit_line


def write_run(folder, epochs: int, done: int, finished: bool = False) -> None:
    """A run folder of `epochs` epochs with `done` of them recorded, each of 60 s."""
    folder.mkdir(parents=True)
    cfg = Config()
    cfg.optim.epochs = epochs
    (folder / CONFIG).write_text(dump_yaml(cfg))
    (folder / METRICS).write_text("".join(json.dumps({"epoch": e, "epoch_seconds": 60.0}) + "\n" for e in range(done)))
    if finished:
        (folder / SUMMARY).write_text(json.dumps({"rtm": {"last10_mean": 50.0}, "ntm": {"last10_mean": 40.0},
                                                  "selection": {"precision": None}, "epochs": done}))


@pytest.fixture
def table(tmp_path):
    """A sweep folder `table` of three cells of 4 epochs: `a` running (2 done), `b` finished, `c` queued."""
    out = tmp_path / "table"
    write_run(out / RUNS / "a", 4, 2)
    write_run(out / RUNS / "b", 4, 4, finished=True)
    acquire(out / RUNS / "a")  # as the process training it holds it
    yield out
    release(out / RUNS / "a")


def controller(out, stream):
    cells = SimpleNamespace(cells=[SimpleNamespace(name=name) for name in ("a", "b", "c")])
    executor = SimpleNamespace(slots=2, seen=lambda name, state: state)  # local processes: the folders say all
    return sweep_command.Controller(cells, out, executor, {"a": 4, "b": 4, "c": 4}, stream)


def test_a_heartbeat_line_tells_runs_running_and_finished_epochs_done_and_the_eta(table, monkeypatch):
    monkeypatch.setattr(sweep_command, "HEARTBEAT_SECONDS", 0.0)
    log = io.StringIO()
    controller(table, log).draw()
    # 6 epochs left (2 of a, 4 of c) at 60 s each, two at a time: 3 minutes.
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] sweep table: 1 running, 1 of 3 finished, epochs 6 of 12, ETA 3m\n",
                        log.getvalue())


def test_the_heartbeat_comes_once_an_interval_not_at_every_poll(table, monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(sweep_command, "HEARTBEAT_SECONDS", 3600.0)
    sweep = controller(table, log)
    for _ in range(3):
        sweep.draw()
    assert log.getvalue() == ""  # the first beat is an interval after the sweep starts
    monkeypatch.setattr(sweep_command, "HEARTBEAT_SECONDS", 0.0)
    sweep.draw()
    sweep.draw()
    assert len(log.getvalue().splitlines()) == 2


def test_the_heartbeats_epochs_reach_their_total_when_a_cell_ended_without_finishing(tmp_path, monkeypatch):
    """A cell whose run failed after 1 of its 4 epochs counts the epoch it did, not its plan."""
    monkeypatch.setattr(sweep_command, "HEARTBEAT_SECONDS", 0.0)
    out = tmp_path / "table"
    write_run(out / RUNS / "a", 4, 4, finished=True)
    write_run(out / RUNS / "b", 4, 4, finished=True)
    write_run(out / RUNS / "c", 4, 1)
    (out / RUNS / "c" / CONSOLE).write_text(f"{ATTEMPT}1\nact: error: out of memory\n{exit_line(1)}\n")
    log = io.StringIO()
    sweep = controller(out, log)
    sweep.tell("c", sweep.read("c"), ended=True)  # as the sweep tells a run that ended
    sweep.draw()
    beat = log.getvalue().splitlines()[-1]
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] sweep table: 0 running, 2 of 3 finished, epochs 9 of 9, ETA -", beat), beat
