"""`act convert` and the DALI and FFCV pipelines on the CPU, on small image folders the tests write."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from datafactory import write_image_folder

from act.cli import main
from act.config import load_config
from act.convert import convert, read_converted
from act.errors import ActError

needs_dali = pytest.mark.skipif(importlib.util.find_spec("nvidia.dali") is None, reason="the dali extra is not installed")
needs_ffcv = pytest.mark.skipif(importlib.util.find_spec("ffcv") is None, reason="the ffcv extra is not installed")


def folder_config(root, *extra):
    return load_config(None, ["data.name=folder", f"data.root={root}", "data.image_size=32",
                              "data.noise.type=symmetric", "data.noise.closeset_ratio=0.4", *extra])


@pytest.fixture
def image_folder(tmp_path):
    return write_image_folder(tmp_path / "images", ["cat", "dog", "owl"], per_class=6, size=44)


def test_conversion_writes_a_complete_manifest(image_folder, tmp_path):
    manifest = convert(folder_config(image_folder), "dali", tmp_path / "out")
    out = tmp_path / "out"
    assert manifest["counts"] == {"train": 18, "test": 18} and manifest["classes"] == ["cat", "dog", "owl"]
    assert json.loads((out / "manifest.json").read_text())["sha256"] == manifest["sha256"]
    lines = (out / "train.txt").read_text().splitlines()
    assert lines[0] == "images/train/00000000.jpg 0" and len(lines) == 18
    assert all((out / line.split()[0]).is_file() for line in lines)
    source = read_converted(out)
    assert np.array_equal(source.train.labels, np.repeat([0, 1, 2], 6))
    assert source.image_size == 32 and source.augment == "web"


def test_converting_twice_gives_the_same_files(image_folder, tmp_path):
    a = convert(folder_config(image_folder), "dali", tmp_path / "a")
    b = convert(folder_config(image_folder), "dali", tmp_path / "b")
    assert a["sha256"] == b["sha256"]


def test_an_existing_output_is_refused_unless_forced(image_folder, tmp_path):
    convert(folder_config(image_folder), "dali", tmp_path / "out")
    with pytest.raises(ActError, match="add --force"):
        convert(folder_config(image_folder), "dali", tmp_path / "out")
    convert(folder_config(image_folder), "dali", tmp_path / "out", force=True)
    assert (tmp_path / "out" / "manifest.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_bad_image_stops_the_conversion_and_leaves_nothing(image_folder, tmp_path):
    for name in ("broken.jpg", "empty.png"):
        (Path(image_folder) / "train" / "dog" / name).write_bytes(b"not an image" if name == "broken.jpg" else b"")
    with pytest.raises(ActError, match="2 unreadable image.*broken.jpg cannot be read.*empty.png cannot be read.*--skip-bad"):
        convert(folder_config(image_folder), "dali", tmp_path / "out")
    assert not (tmp_path / "out").exists() and list(tmp_path.glob(".out*")) == []
    manifest = convert(folder_config(image_folder), "dali", tmp_path / "out", skip_bad=True)
    assert manifest["counts"]["train"] == 18
    assert sorted(Path(b["file"]).name for b in manifest["bad_files"]) == ["broken.jpg", "empty.png"]


def test_array_data_sets_are_not_converted(tmp_path):
    with pytest.raises(ActError, match="tensor pipeline reads it directly"):
        convert(load_config(), "dali", tmp_path / "out")


@needs_dali
def test_the_dali_pipeline_yields_every_index_once_with_both_views(image_folder, tmp_path):
    from pipelines import build_pipeline

    convert(folder_config(image_folder), "dali", tmp_path / "out")
    source = read_converted(tmp_path / "out")
    noisy = (source.train.labels + 1) % 3
    p = build_pipeline("dali", source, noisy, batch_size=5, device=torch.device("cpu"), seed=0, workers=1,
                       test_batch_size=7)
    batches = list(p.train_batches(0))
    assert [len(b.index) for b in batches] == [5, 5, 5, 3] and p.steps_per_epoch() == 4
    assert sorted(torch.cat([b.index for b in batches]).tolist()) == list(range(18))
    b = batches[0]
    assert b.weak.shape == b.strong.shape == (5, 3, 32, 32) and b.weak.dtype == torch.float32
    assert torch.equal(b.label, torch.as_tensor(noisy)[b.index])
    again = list(p.train_batches(0))
    assert torch.equal(again[0].weak, b.weak) and torch.equal(again[0].strong, b.strong)
    images, labels = zip(*p.test_batches())
    assert torch.cat(images).shape == (18, 3, 32, 32) and torch.cat(labels).tolist() == source.test.labels.tolist()


@needs_dali
def test_training_from_a_converted_folder(image_folder, tmp_path, capsys):
    assert main(["convert", "--format", "dali", "--out", str(tmp_path / "out"), "data.name=folder",
                 f"data.root={image_folder}", "data.image_size=32"]) == 0
    assert "18 train and 18 test images" in capsys.readouterr().out
    cfg = load_config(None, ["data.name=folder", f"pipeline.path={tmp_path / 'out'}", "pipeline.name=dali",
                             "model.name=tinycnn", "optim.epochs=2", "optim.warmup_epochs=1",
                             "optim.lr_decay=cosine:1,5e-4,2", "optim.batch_size=8", f"run.out_dir={tmp_path / 'runs'}",
                             "run.progress=false", "pipeline.workers=1"])
    from act import train as training

    summary = training.train(cfg)
    assert summary["epochs"] == 2
    run = next((tmp_path / "runs").iterdir())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["samples_seen"] for r in records] == [18, 18] and records[1]["phase"] == "robust"


@needs_ffcv
def test_ffcv_conversion_adds_reproducible_betons(image_folder, tmp_path):
    a = convert(folder_config(image_folder), "ffcv", tmp_path / "a", progress=False)
    b = convert(folder_config(image_folder), "ffcv", tmp_path / "b", progress=False)
    assert a["format"] == "ffcv" and {"train.beton", "test.beton"} <= set(a["sha256"])
    assert a["sha256"] == b["sha256"]


@needs_ffcv
def test_the_ffcv_pipeline_follows_the_epoch_order_with_both_views(image_folder, tmp_path):
    from pipelines import build_pipeline, resolve_pipeline_name

    out = tmp_path / "out"
    convert(folder_config(image_folder), "ffcv", out, progress=False)
    source = read_converted(out)
    assert resolve_pipeline_name("auto", source, torch.device("cpu"), str(out)) == "ffcv"
    noisy = (source.train.labels + 1) % 3
    p = build_pipeline("ffcv", source, noisy, batch_size=5, device=torch.device("cpu"), seed=0, workers=1,
                       path=str(out), test_batch_size=7)
    for epoch in (0, 1):
        batches = list(p.train_batches(epoch))
        assert [len(b.index) for b in batches] == [5, 5, 5, 3]
        assert torch.equal(torch.cat([b.index for b in batches]), p.epoch_order(epoch))
    b = batches[0]
    assert b.weak.shape == b.strong.shape == (5, 3, 32, 32) and torch.equal(b.label, torch.as_tensor(noisy)[b.index])
    images, labels = zip(*p.test_batches())
    assert torch.cat(images).shape == (18, 3, 32, 32) and torch.cat(labels).tolist() == source.test.labels.tolist()


def test_a_missing_extra_or_beton_is_a_clear_error(image_folder, tmp_path):
    from pipelines import build_pipeline

    convert(folder_config(image_folder), "dali", tmp_path / "out")
    source = read_converted(tmp_path / "out")
    with pytest.raises(ActError, match="ffcv"):
        build_pipeline("ffcv", source, source.train.labels, batch_size=4, device=torch.device("cpu"), seed=0,
                       path=str(tmp_path / "out"))
