"""What a run logs for the tools people already read (act/run/outputs.py, act/run/tags.py,
act/run/wandb_log.py): TensorBoard's scalars in four sections and its HParams view, a resumed
run's event files, and Weights & Biases (a stand-in `wandb` module records what a run tells it;
the real package, where installed, writes an offline run)."""
import importlib.machinery
import importlib.util
import json
import sys
import types

import pytest

from act.config import load_config
from act.errors import ActError
from act.run import loop as training
from act.run.folder import TENSORBOARD, WANDB, WANDB_ID
from act.run.tags import TAGS

TINY = ["optim.epochs=3", "optim.warmup_epochs=1", "optim.lr_decay=cosine:1,5e-4,3", "data.train_limit=300",
        "data.test_limit=100", "run.progress=false", "run.threads=1", "run.plots=false"]
EPOCH_TAGS = {"test/rtm_acc", "test/ntm_acc",
              "train/rtm_loss", "train/ntm_loss", "train/rtm_acc", "train/ntm_acc", "train/rtm_lr", "train/ntm_lr",
              "train/samples",
              "selection/precision", "selection/recall", "selection/f1", "selection/selected_fraction",
              "selection/mining",
              "speed/epoch_s", "speed/train_s", "speed/images_per_s"}
FINAL_TAGS = {"test/rtm_last10_mean", "test/rtm_best", "test/ntm_last10_mean"}


def train(out, name: str, *overrides: str) -> dict:
    return training.train(load_config(None, [f"run.out_dir={out}", f"run.name={name}", *TINY, *overrides]))


def events(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(run / TENSORBOARD)).Reload()


def records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def board_run(tmp_path_factory):
    pytest.importorskip("tensorboard")
    out = tmp_path_factory.mktemp("board")
    train(out, "run", "run.tensorboard=true")
    return out / "run"


def test_tensorboard_scalars_are_grouped_under_test_train_selection_and_speed(board_run):
    assert set(events(board_run).Tags()["scalars"]) == EPOCH_TAGS | FINAL_TAGS


def test_every_number_of_an_epoch_record_is_a_tensorboard_scalar_at_its_epoch(board_run):
    board = events(board_run)
    for key, tag in TAGS.items():
        expected = [(r["epoch"], pytest.approx(r[key])) for r in records(board_run) if r[key] is not None]
        assert [(e.step, e.value) for e in board.Scalars(tag)] == expected, tag
    numbers = {k for r in records(board_run) for k, v in r.items() if isinstance(v, (int, float)) and k != "epoch"}
    assert numbers <= set(TAGS)


def test_the_runs_figures_are_scalars_at_its_last_epoch(board_run):
    summary = json.loads((board_run / "summary.json").read_text())
    board = events(board_run)
    figures = {tag: [(e.step, e.value) for e in board.Scalars(tag)] for tag in FINAL_TAGS}
    assert figures == {"test/rtm_last10_mean": [(2, pytest.approx(summary["rtm"]["last10_mean"]))],
                       "test/rtm_best": [(2, pytest.approx(summary["rtm"]["best"]))],
                       "test/ntm_last10_mean": [(2, pytest.approx(summary["ntm"]["last10_mean"]))]}


def test_the_runs_settings_are_its_hparams_row_in_its_own_event_folder(board_run):
    from tensorboard.plugins.hparams import api_pb2, metadata

    content = events(board_run).PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["optim.lr"].number_value == pytest.approx(0.02)
    assert start.hparams["data.name"].string_value == "digits"
    assert start.hparams["method.ablation.mining"].string_value == "true"
    assert "run.name" in start.hparams and "model.pretrained" not in start.hparams  # null: left out
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.STATUS_SUCCESS
    assert [p for p in (board_run / TENSORBOARD).iterdir() if p.is_dir()] == []  # no sub-run per call


def test_a_resumed_run_shows_each_epoch_and_figure_once(tmp_path):
    pytest.importorskip("tensorboard")
    train(tmp_path, "run", "run.tensorboard=true", "optim.epochs=2")
    training.resume(tmp_path / "run", ["optim.epochs=3"])
    board = events(tmp_path / "run")
    assert set(board.Tags()["scalars"]) == EPOCH_TAGS | FINAL_TAGS
    assert [e.step for e in board.Scalars("test/rtm_acc")] == [0, 1, 2]
    assert [e.step for e in board.Scalars("test/rtm_last10_mean")] == [2]


def test_tensorboard_turned_on_at_a_resume_shows_the_epochs_before_it(tmp_path):
    pytest.importorskip("tensorboard")
    train(tmp_path, "run", "optim.epochs=2")
    training.resume(tmp_path / "run", ["optim.epochs=3", "run.tensorboard=true"])
    assert [e.step for e in events(tmp_path / "run").Scalars("test/ntm_acc")] == [0, 1, 2]


class FakeWandb(types.ModuleType):
    """A stand-in for the wandb package: records each init's arguments, each log and each finish."""

    def __init__(self):
        super().__init__("wandb")
        self.__spec__ = importlib.machinery.ModuleSpec("wandb", None)  # find_spec finds it installed
        self.inits, self.runs = [], []

    def init(self, **kwargs):
        self.inits.append(kwargs)
        run = types.SimpleNamespace(logged=[], summary={}, finished=0)
        run.log = lambda data, step: run.logged.append((step, dict(data)))
        run.finish = lambda: setattr(run, "finished", run.finished + 1)
        self.runs.append(run)
        return run


@pytest.fixture
def wandb(monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    return fake


def test_wandb_is_off_unless_a_run_asks_for_it(tmp_path, wandb):
    assert load_config(None).run.wandb == "off"
    train(tmp_path, "run")
    assert wandb.inits == []


def test_an_offline_wandb_run_is_named_and_configured_as_the_run_and_writes_under_its_folder(tmp_path, wandb):
    train(tmp_path, "run", "run.wandb=offline")
    (init,) = wandb.inits
    assert (init["mode"], init["dir"], init["name"]) == ("offline", str(tmp_path / "run"), "run")
    assert init["id"] == (tmp_path / "run" / WANDB_ID).read_text().strip() and init["resume"] == "allow"
    assert init["config"]["optim.lr"] == pytest.approx(0.02) and init["config"]["data.name"] == "digits"


def test_wandb_gets_each_epochs_scalars_under_the_tensorboard_tags_and_the_figures_at_the_end(tmp_path, wandb):
    train(tmp_path, "run", "run.wandb=offline")
    (run,) = wandb.runs
    assert [step for step, _ in run.logged] == [0, 1, 2]
    assert set(run.logged[-1][1]) == EPOCH_TAGS
    assert run.logged[1][1]["test/rtm_acc"] == pytest.approx(records(tmp_path / "run")[1]["rtm_test_acc"])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert run.summary["test/rtm_last10_mean"] == pytest.approx(summary["rtm"]["last10_mean"])
    assert set(run.summary) == FINAL_TAGS and run.finished == 1


def test_a_resumed_run_continues_its_wandb_run_from_its_next_epoch(tmp_path, wandb):
    train(tmp_path, "run", "run.wandb=offline", "optim.epochs=2")
    training.resume(tmp_path / "run", ["optim.epochs=3"])
    first, second = wandb.inits
    assert second["id"] == first["id"]
    assert [step for step, _ in wandb.runs[1].logged] == [2]


def test_wandb_asked_for_and_not_installed_is_refused_in_one_line_before_anything_is_made(tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.delitem(sys.modules, "wandb", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else find_spec(name, *a))
    with pytest.raises(ActError, match=r"^run.wandb=offline needs the wandb package: pip install \"wandb>=0.19.10\""):
        train(tmp_path, "run", "run.wandb=offline")
    assert not (tmp_path / "run").exists()


def test_tensorboard_asked_for_and_not_installed_is_refused_before_the_run_folder_is_made(tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else find_spec(name, *a))
    with pytest.raises(ActError, match=r"^run.tensorboard=true needs the tensorboard package: pip install"):
        train(tmp_path, "run", "run.tensorboard=true")
    assert not (tmp_path / "run").exists()


def test_the_real_wandb_writes_an_offline_run_under_the_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(tmp_path, "run", "run.wandb=offline")
    assert list((tmp_path / "run" / WANDB).glob("offline-run-*"))
