"""A data set, a method, a model or a pipeline is one registration: config, training, run folder and
report read it."""
import io
import json

import pytest
import torch.nn as nn

from act.commands.report import report
from act.config import load_config
from act.datasets import DatasetSpec, read_source
from act.datasets.registry import SPECS
from act.errors import ActError
from act.method.registry import METHODS, MethodSpec
from act.models import MODELS
from act.run import loop as training
from act.step import engine
from pipelines import PIPELINES
from pipelines.tensor import TensorPipeline
from support.datafactory import array_source


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
    assert run.name.startswith("toy-sym40-act-")
    assert summary["epochs"] == 2 and summary["selection"]["precision"] is None  # clean_known=False
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in records] == ["warmup", "robust"]
    assert "| Toy-5 sym40 | " in report([str(tmp_path / "runs")])


def test_a_data_set_without_open_set_classes_refuses_an_open_set_ratio(toy, tmp_path):
    with pytest.raises(ActError, match=r"classes to spare \(cifar80n\); toy has none"):
        toy_config(tmp_path, "data.noise.openset_ratio=0.2")


def test_a_registered_method_trains_its_phases_with_its_own_loss_and_reports_by_its_title(tmp_path, monkeypatch):
    """A toy variant with a loss function of its own (half the Standard loss), one phase,
    under a name and title of its own: one registration, nothing else changes."""
    steps = []

    def halved_losses(ctx, batch, totals):
        steps.append(len(batch.index))
        return 0.5 * engine.standard_losses(ctx, batch, totals)

    monkeypatch.setitem(METHODS, "toy", MethodSpec("toy", "Toy", {"halved": halved_losses},
                                                    lambda epoch, warmup: "halved", lambda method: False))
    cfg = load_config(None, ["method.name=toy", f"run.out_dir={tmp_path / 'runs'}", "optim.epochs=2",
                             "optim.warmup_epochs=1", "optim.lr_decay=constant", "data.train_limit=200",
                             "data.test_limit=50", "run.progress=false", "run.threads=1"])
    out = io.StringIO()
    training.train(cfg, out=out)
    run = next((tmp_path / "runs").iterdir())
    assert run.name.startswith("digits-sym40-toy-")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in records] == ["halved", "halved"]
    assert sum(steps) == sum(r["samples_seen"] for r in records) == 400  # every step ran the toy loss
    assert "sample selection" not in out.getvalue()  # a method that does not select prints no selection
    assert "| digits sym40 | " in report([str(tmp_path / "runs")]) and "| Toy |" in report([str(tmp_path / "runs")])


@pytest.fixture
def toy_pipeline(monkeypatch):
    """A toy pipeline registered for one test: the tensor pipeline under its own name, with a
    view variant of its own that keeps the weak view only (no strong view is built)."""
    class ToyPipeline(TensorPipeline):
        name = "toy"
        variants = {"toy-weak-only": "the weak view only"}

        def __init__(self, source, noisy, **kwargs):
            if kwargs["views"] == "toy-weak-only":
                kwargs["strong"] = False
            super().__init__(source, noisy, **kwargs)

    monkeypatch.setitem(PIPELINES, "toy", ToyPipeline)
    return ToyPipeline


def test_a_registered_pipeline_and_its_variant_are_config_choices_and_train(toy_pipeline, tmp_path):
    cfg = load_config(None, ["pipeline.name=toy", "pipeline.views=toy-weak-only", "method.ablation.consistency=false",
                             f"run.out_dir={tmp_path}", "optim.epochs=1", "optim.warmup_epochs=0",
                             "optim.lr_decay=constant", "data.train_limit=100", "data.test_limit=50",
                             "run.progress=false", "run.threads=1"])
    summary = training.train(cfg, out=io.StringIO())
    assert (summary["pipeline"], summary["views"]) == ("toy", "toy-weak-only")


def test_a_pipelines_variant_given_to_another_pipeline_is_refused_naming_its_owner(toy_pipeline, tmp_path):
    cfg = load_config(None, ["pipeline.name=tensor", "pipeline.views=toy-weak-only", f"run.out_dir={tmp_path}"])
    with pytest.raises(ActError, match="pipeline.views=toy-weak-only is a view of the toy pipeline, but this run "
                                       "uses pipeline.name=tensor"):
        training.train(cfg, out=io.StringIO())


def test_a_pipeline_missing_from_the_registry_is_refused_with_the_choices():
    with pytest.raises(ActError, match="pipeline.name='toy' is not allowed; choose one of: auto, tensor, "
                                       "reference, dali, ffcv"):
        load_config(None, ["pipeline.name=toy"])


def test_a_registered_model_is_a_config_choice_and_trains(tmp_path, monkeypatch):
    """A toy model (one linear layer over the pixels) registered by name, as @register does."""
    monkeypatch.setitem(MODELS, "toy-linear", lambda num_classes, in_channels, image_size: nn.Sequential(
        nn.Flatten(), nn.Linear(in_channels * image_size * image_size, num_classes)))
    cfg = load_config(None, ["model.name=toy-linear", f"run.out_dir={tmp_path}", "optim.epochs=2",
                             "optim.warmup_epochs=1", "optim.lr_decay=constant", "data.train_limit=200",
                             "data.test_limit=50", "run.progress=false", "run.threads=1"])
    summary = training.train(cfg, out=io.StringIO())
    assert summary["model"] == "toy-linear" and summary["epochs"] == 2


def test_a_model_missing_from_the_registry_is_refused_with_the_choices(tmp_path):
    with pytest.raises(ActError, match=r"model.name='toy-linear' is not allowed; choose (\w+, )*resnet32, sevencnn, "
                                       r"tinycnn or timm:<name>"):
        load_config(None, ["model.name=toy-linear"])
