"""`act convert` and the DALI and FFCV pipelines on the CPU, on small image folders the tests write."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.datafactory import write_image_folder

from act.commands.cli import main
from act.commands.convert import convert
from act.config import load_config
from act.datasets.converted import read_converted
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
    from act.run import loop as training

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
    from pipelines import build_pipeline

    out = tmp_path / "out"
    convert(folder_config(image_folder), "ffcv", out, progress=False)
    source = read_converted(out)
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


# ---- nothing of the user's is lost or mixed in (issue 14, items 1 and 11) ---------------

def cli_convert(image_folder, out, *extra):
    return main(["convert", "--format", "dali", "--out", str(out), "data.name=folder", f"data.root={image_folder}",
                 "data.image_size=32", *extra])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("act: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_force_refuses_a_folder_act_convert_did_not_write(image_folder, tmp_path, capsys):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("years of work")
    assert cli_convert(image_folder, thesis, "--force") == 2
    assert "--force replaces only a folder act convert wrote" in one_line_error(capsys)
    assert [p.name for p in thesis.iterdir()] == ["chapter1.tex"]


def test_force_refuses_a_conversion_holding_a_file_of_the_user(image_folder, tmp_path, capsys):
    out = tmp_path / "out"
    convert(folder_config(image_folder), "dali", out)
    (out / "notes.txt").write_text("mine")
    assert cli_convert(image_folder, out, "--force") == 2
    assert f"holds {out / 'notes.txt'}, which act convert did not write" in one_line_error(capsys)
    assert (out / "notes.txt").read_text() == "mine"


def test_force_refuses_a_copied_manifest_without_the_marker(image_folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"version": 1}))
    assert cli_convert(image_folder, out, "--force") == 2
    assert "holds no manifest.json of act convert" in one_line_error(capsys)
    assert (out / "manifest.json").is_file()


@pytest.mark.parametrize("out", [".", "sub/.."])
def test_an_out_ending_in_dots_is_refused_before_anything_is_written(image_folder, tmp_path, capsys, monkeypatch, out):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert cli_convert(image_folder, out) == 2
    assert f"--out {out} does not end in a folder name" in one_line_error(capsys)
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["images", "work"]


def test_force_replaces_a_previous_conversion(image_folder, tmp_path):
    out = tmp_path / "out"
    convert(folder_config(image_folder), "dali", out, quality=50)
    manifest = convert(folder_config(image_folder), "dali", out, force=True)
    assert json.loads((out / "manifest.json").read_text())["settings"]["quality"] == 90
    assert manifest["written_by"] == "act convert"


@pytest.mark.parametrize("where", ["root", "inside train", "holding root"])
def test_out_may_not_overlap_the_data_it_reads(image_folder, tmp_path, capsys, where):
    out = {"root": Path(image_folder), "inside train": Path(image_folder) / "train" / "converted",
           "holding root": tmp_path}[where]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert cli_convert(image_folder, out, "--force") == 2
    err = one_line_error(capsys)
    assert "the data being converted" in err or "already exists" in err or "act convert wrote" in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_out_inside_the_input_tree_is_refused_even_when_new(image_folder, capsys):
    out = Path(image_folder) / "train" / "converted"
    assert cli_convert(image_folder, out) == 2
    assert "lies inside the data being converted" in one_line_error(capsys)
    assert not out.exists()


def test_a_killed_conversions_partial_folder_is_removed_on_the_next_run(image_folder, tmp_path):
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    partial = tmp_path / f".out.partial-{dead_pid}"
    (partial / "images" / "train").mkdir(parents=True)
    (partial / ".act-convert-partial").write_text("")
    foreign = tmp_path / f".out.partial-{dead_pid + 1}"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("not act's")
    convert(folder_config(image_folder), "dali", tmp_path / "out")
    assert not partial.exists() and (foreign / "keep.txt").is_file()
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_a_conversion_moved_aside_by_a_killed_run_is_put_back(image_folder, tmp_path):
    convert(folder_config(image_folder), "dali", tmp_path / "out")
    aside = tmp_path / f".out.old-{2**22 + 12345}"
    (tmp_path / "out").rename(aside)
    with pytest.raises(ActError, match="already exists"):
        convert(folder_config(image_folder), "dali", tmp_path / "out")
    assert (tmp_path / "out" / "manifest.json").is_file() and not aside.exists()


@pytest.mark.parametrize("option,value,message", [
    ("--max-side", "-5", "--max-side -5 must be a number of pixels >= 1"),
    ("--max-side", "16", "--max-side 16 is below 37"),
    ("--quality", "500", "--quality 500 is outside 1..95"),
    ("--quality", "0", "--quality 0 is outside 1..95"),
])
def test_image_settings_out_of_range_are_refused(image_folder, tmp_path, capsys, option, value, message):
    assert cli_convert(image_folder, tmp_path / "out", option, value) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_a_full_disk_while_converting_keeps_the_previous_output(image_folder, tmp_path, capsys, monkeypatch):
    import errno

    from PIL import Image

    out = tmp_path / "out"
    convert(folder_config(image_folder), "dali", out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    saved = []

    def save_until_full(self, path, *args, **kwargs):
        if len(saved) == 5:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        saved.append(path)

    monkeypatch.setattr(Image.Image, "save", save_until_full)
    assert cli_convert(image_folder, out, "--force", "--quality", "60") == 2
    err = one_line_error(capsys)
    assert "No space left on device" in err and f"{out} is as it was" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_converted_folder_missing_its_labels_is_one_line_naming_it(image_folder, tmp_path, capsys):
    out = tmp_path / "out"
    convert(folder_config(image_folder), "dali", out)
    (out / "labels.npz").unlink()
    assert main(["train", "data.name=folder", f"pipeline.path={out}", "optim.epochs=1", "optim.warmup_epochs=1",
                 f"run.out_dir={tmp_path / 'runs'}"]) == 2
    assert f"pipeline.path={out} is an incomplete or damaged conversion (labels.npz" in one_line_error(capsys)


def test_a_converted_folder_with_a_damaged_manifest_is_one_line_naming_it(image_folder, tmp_path):
    out = tmp_path / "out"
    convert(folder_config(image_folder), "dali", out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(ActError, match=r"manifest.json cannot be read as JSON"):
        read_converted(out)


def test_a_conversion_of_another_data_set_is_refused(image_folder, tmp_path):
    from act.datasets.converted import read_converted_for

    convert(folder_config(image_folder), "dali", tmp_path / "out", progress=False)
    cfg = load_config(None, ["data.name=cifar100n", f"pipeline.path={tmp_path / 'out'}"])
    with pytest.raises(ActError, match="holds a conversion of folder, but data.name=cifar100n"):
        read_converted_for(cfg)


def test_an_image_size_other_than_the_conversions_is_refused(image_folder, tmp_path):
    from act.datasets.converted import read_converted_for

    convert(folder_config(image_folder), "dali", tmp_path / "out", progress=False)
    cfg = load_config(None, ["data.name=folder", f"pipeline.path={tmp_path / 'out'}", "data.image_size=64"])
    with pytest.raises(ActError, match="converted at image size 32, but data.image_size=64"):
        read_converted_for(cfg)
    cfg.data.image_size = 0  # the conversion's own size
    assert read_converted_for(cfg).image_size == 32


@pytest.mark.parametrize("edit,why", [
    (lambda m: m["counts"].update(train="18"), "'counts.train' is a string, not an integer"),
    (lambda m: m["image"].update(image_size=[32]), "'image.image_size' is a list, not an integer"),
    (lambda m: m.update(classes="cat"), "'classes' is a string, not a list"),
    (lambda m: m["image"].update(mean=None), "'image.mean' is null, not a list"),
    (lambda m: m["source"].pop("name"), "'source.name' is missing"),
    (lambda m: m["truncated_images"].update(files=[3]), "'truncated_images.files[0]' is an integer, not a mapping"),
], ids=["count text", "size list", "classes text", "mean null", "no name", "truncated entry"])
def test_a_manifest_with_fields_of_another_type_is_one_line_naming_the_field(image_folder, tmp_path, edit, why):
    out = tmp_path / "out"
    convert(folder_config(image_folder), "dali", out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    edit(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ActError) as info:
        read_converted(out)
    assert str(info.value) == f"{out / 'manifest.json'} does not hold what act convert writes ({why}): convert again"


def test_converted_labels_of_another_dtype_are_one_line_naming_the_array(image_folder, tmp_path):
    out = tmp_path / "out"
    convert(folder_config(image_folder), "dali", out, progress=False)
    with np.load(out / "labels.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    np.savez(out / "labels.npz", **{**arrays, "test_labels": arrays["test_labels"].astype(np.float32)})
    with pytest.raises(ActError, match=r"labels.npz does not hold what act convert writes \('test_labels' is a "
                                       r"1-d array of float32, not a 1-d array of integers\)"):
        read_converted(out)
