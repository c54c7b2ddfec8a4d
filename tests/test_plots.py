"""Curves (act/run/plots.py) and what a run writes for people and tools at its end (act/run/outputs.py)."""
import json

import numpy as np
import pytest

from act.config import load_config
from act.errors import ActError
from act.run import folder as rundir
from act.run import loop as training
from act.run import plots

TINY = ["optim.epochs=3", "optim.warmup_epochs=1", "optim.lr_decay=cosine:1,5e-4,3", "data.train_limit=300",
        "data.test_limit=100", "run.progress=false", "run.threads=1"]


def history(accuracies, mining=(None, 0.5, 1.0)):
    return [{"epoch": e, "phase": "warmup" if e == 0 else "robust", "rtm_test_acc": a, "ntm_test_acc": a - 10,
             "sel_precision": 90.0, "sel_recall": 80.0, "sel_f1": 85.0, "selected_frac": 0.5, "mining": m}
            for e, (a, m) in enumerate(zip(accuracies, mining))]


def test_series_are_percent_per_epoch_and_missing_epochs_are_nan():
    values = plots.series([history([10.0, 20.0, 30.0]), history([30.0, 40.0])], "rtm_test_acc")
    assert np.array_equal(values, [[10, 20, 30], [30, 40, np.nan]], equal_nan=True)
    assert np.array_equal(plots.series([history([1.0, 2.0, 3.0])], "selected_frac")[0], [50, 50, 50])
    assert np.array_equal(plots.mean_over_runs(values), [20, 30, 30])


def test_a_group_figure_draws_each_seed_thin_and_their_mean_bold():
    pytest.importorskip("matplotlib")
    fig = plots.draw_curves([history([10.0, 20.0, 30.0]), history([30.0, 40.0, 50.0])], "digits Sym-40, ACT")
    accuracy, selection = fig.axes
    blue = [line for line in accuracy.lines if line.get_color() == "tab:blue"]
    assert [line.get_linewidth() for line in blue] == [0.7, 0.7, 2.2]
    assert [list(line.get_ydata()) for line in blue] == [[10, 20, 30], [30, 40, 50], [20, 30, 40]]
    assert blue[-1].get_label() == "RTM (mean)"
    labels = [line.get_label() for line in selection.lines if line.get_linewidth() == 2.2]
    assert labels == ["precision (mean)", "recall (mean)", "F1 (mean)", "selected % (mean)"]


def test_mining_epochs_are_shaded_by_their_share_of_steps():
    pytest.importorskip("matplotlib")
    accuracy = plots.draw_curves([history([10.0, 20.0, 30.0])], "x").axes[0]
    spans = [(p.get_x(), p.get_width(), p.get_alpha()) for p in accuracy.patches]
    assert spans == [(0.5, 1.0, pytest.approx(0.3)), (1.5, 1.0, pytest.approx(0.5))]  # epochs 1 and 2


@pytest.fixture(scope="module")
def tensorboard_run(tmp_path_factory):
    pytest.importorskip("matplotlib")
    pytest.importorskip("tensorboard")
    out = tmp_path_factory.mktemp("outputs")
    training.train(load_config(None, [f"run.out_dir={out}", "run.name=run", "run.plots=auto",
                                      "run.tensorboard=true", *TINY]))
    return out / "run"


def test_a_run_draws_its_own_curves_at_its_end(tensorboard_run):
    from PIL import Image

    assert Image.open(tensorboard_run / "curves.png").size == (1100, 400)


def test_tensorboard_scalars_are_the_metrics_of_each_epoch(tensorboard_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tensorboard_run / rundir.TENSORBOARD)).Reload()
    records = [json.loads(line) for line in (tensorboard_run / "metrics.jsonl").read_text().splitlines()]
    rtm = [(e.step, e.value) for e in events.Scalars("test/rtm_acc")]
    assert rtm == [(r["epoch"], pytest.approx(r["rtm_test_acc"])) for r in records]
    assert [e.step for e in events.Scalars("selection/mining")] == [1, 2]  # null in warm-up: no scalar


def test_plots_true_without_matplotlib_stops_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "available", lambda: False)
    with pytest.raises(ActError, match=r'run.plots=true needs matplotlib: pip install "matplotlib>=3.7"'):
        training.train(load_config(None, [f"run.out_dir={tmp_path}", "run.name=r", "run.plots=true", *TINY]))
    assert not (tmp_path / "r" / "metrics.jsonl").exists()


def test_plots_auto_without_matplotlib_trains_without_curves(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "available", lambda: False)
    training.train(load_config(None, [f"run.out_dir={tmp_path}", "run.name=r", "run.plots=auto", *TINY]))
    assert (tmp_path / "r" / "summary.json").exists() and not (tmp_path / "r" / "curves.png").exists()


def test_a_title_that_looks_like_tex_is_drawn_as_its_text(tmp_path):
    pytest.importorskip("matplotlib")
    title = r"$\frac{a$ Sym-20, ACT"
    plots.save_curves([history([10.0, 20.0, 30.0])], title, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0
    assert plots.draw_curves([history([10.0, 20.0, 30.0])], title).get_suptitle().startswith(title)
