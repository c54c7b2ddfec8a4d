"""A data set is one registration: config, training, run folder and report read its spec."""
import io
import json

import pytest

from act import train as training
from act.config import load_config
from act.datasets import DatasetSpec, read_source
from act.datasets.registry import SPECS
from act.errors import ActError
from act.report import report
from tests.datafactory import array_source


@pytest.fixture
def toy(monkeypatch):
    """A toy data set registered for one test: 60 random 8x8 grey images of 5 classes, no root,
    labels noisy by nature (no true labels known)."""
    def read(root, openset_ratio):
        source = array_source(n=60, size=8, channels=1, n_test=20)
        source.name = "toy"
        return source

    spec = DatasetSpec("toy", read, "digits", needs_root=False, clean_known=False, paper_name="Toy-5")
    monkeypatch.setitem(SPECS, "toy", spec)
    return spec


def toy_config(tmp_path, *extra):
    return load_config(None, ["data.name=toy", f"run.out_dir={tmp_path}", "optim.epochs=2", "optim.warmup_epochs=1",
                              "optim.lr_decay=constant", "optim.batch_size=16", "run.progress=false",
                              "run.threads=1", *extra])


def test_a_registered_data_set_is_a_config_choice(toy, tmp_path):
    assert toy_config(tmp_path).data.name == "toy"
    assert read_source("toy", None).augment == "digits"


def test_a_data_set_missing_from_the_registry_is_refused_with_the_choices(tmp_path):
    with pytest.raises(ActError, match="data.name='toy' is not allowed; choose one of: cifar10n"):
        toy_config(tmp_path)


def test_a_registered_data_set_trains_and_reports_by_its_spec(toy, tmp_path):
    summary = training.train(toy_config(tmp_path / "runs"), out=io.StringIO())
    run = next((tmp_path / "runs").iterdir())
    assert run.name.startswith("toy-symm40-act-")
    assert summary["epochs"] == 2 and summary["selection"]["precision"] is None  # clean_known=False
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in records] == ["warmup", "robust"]
    assert "| Toy-5 Sym-40 | " in report([str(tmp_path / "runs")])


def test_a_data_set_without_open_set_classes_refuses_an_open_set_ratio(toy, tmp_path):
    with pytest.raises(ActError, match=r"classes to spare \(cifar80n\); toy has none"):
        toy_config(tmp_path, "data.noise.openset_ratio=0.2")
