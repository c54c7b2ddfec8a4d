"""Web-* and Food-101N as the public main_web.py and main_food101n.py train them: the 200-output
Food head, truncated images, and the weights a run needs (issue 20)."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from support.datafactory import write_food101n, write_image
from PIL import Image, ImageFile

from act.commands import issues as label_issues
from act.commands.convert import convert, load_rgb
from act.config import load_config
from act.datasets import read_source
from act.datasets.converted import read_converted
from act.errors import ActError
from act.method import functions as M
from act.run import loop as training
from act.run.build import prepare
from act.run.runtime import decide
from pipelines.reference import open_image

CPU = ["run.device=cpu", "run.progress=false", "run.threads=1", "run.plots=false", "pipeline.workers=0"]


def smoothed_targets(logits: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
    """The targets CE trains towards: the gradient of the batch-mean CE is (softmax - target) / B."""
    logits = logits.detach().requires_grad_(True)
    M.cross_entropy(logits, y, smoothing).backward()
    return logits.softmax(1).detach() - logits.grad * len(y)


def write_arrays(path: Path, classes: int, per_class: int = 2, size: int = 8) -> str:
    rs = np.random.RandomState(0)
    y = np.repeat(np.arange(classes), per_class)
    x = rs.randint(0, 256, (len(y), size, size, 1), dtype=np.uint8)
    np.savez(path, x=x, y=y, x_test=x[:classes], y_test=y[:classes])
    return str(path)


def test_a_200_output_head_spreads_the_smoothing_over_the_99_unused_outputs(tmp_path):
    """Food-101N's public head: 200 outputs for 101 classes; with smoothing 0.35 the outputs no
    label names take 0.35 x 99/200 of every target (none with a head of 101)."""
    root = write_arrays(tmp_path / "a.npz", classes=101)
    widths = {}
    for outputs in ("null", "200"):
        cfg = load_config(None, ["data.name=arrays", f"data.root={root}", "model.name=tinycnn",
                                 f"model.num_outputs={outputs}", "method.label_smoothing=0.35",
                                 f"run.out_dir={tmp_path / outputs}", *CPU])
        run = prepare(cfg, decide(cfg))
        batch = next(iter(run.pipeline.train_batches(0)))
        target = smoothed_targets(run.ctx.rtm(batch.weak), batch.label, 0.35)
        widths[outputs] = (target.shape[1], run.ctx.bank.ema.shape[1])
        unused = target[:, 101:].sum(1)
        torch.testing.assert_close(unused, torch.full_like(unused, 0.35 * 99 / 200 if outputs == "200" else 0.0))
        on_label = target.gather(1, batch.label[:, None]).squeeze(1)
        torch.testing.assert_close(on_label, torch.full_like(on_label, 0.65 + 0.35 / target.shape[1]))
    assert widths == {"null": (101, 101), "200": (200, 200)}


def test_a_head_with_more_outputs_than_classes_trains_and_never_suggests_an_unused_output(tmp_path):
    """The bank is as wide as the head. Where a sample's EMA peaks on an output no label names
    (column 150), the consistency pseudo-label falls there, as the public script reads it, but
    act issues suggests the EMA's argmax over the 10 classes and scores the given label's column."""
    cfg = load_config(None, [f"run.out_dir={tmp_path}", "run.name=r", "model.num_outputs=200",
                             "method.label_smoothing=0.35", "optim.epochs=3", "optim.warmup_epochs=1",
                             "optim.lr_decay=constant", "data.train_limit=300", "data.test_limit=100", *CPU])
    summary = training.train(cfg)
    assert 0 <= summary["rtm"]["final"] <= 100 and summary["epochs"] == 3
    path = tmp_path / "r" / "bank.npz"
    with np.load(path) as z:
        bank = dict(z)
    assert bank["ema"].shape == (300, 200) and int(bank["classes"]) == 10 and int(bank["robust_epochs"]) == 2
    with np.load(tmp_path / "r" / "labels.npz") as labels:
        given = int(labels["noisy"][0])
    second = 3 if given != 3 else 4
    bank["ema"][0] = 0.0
    bank["ema"][0, [150, second, given]] = [0.6, 0.3, 0.1]
    np.savez_compressed(path, **bank)
    _, pseudo = M.consistency_targets(torch.from_numpy(bank["ema"][:1]), torch.from_numpy(bank["ema"][:1]),
                                      torch.tensor([given]), torch.tensor([False]))
    assert pseudo.tolist() == [150]
    issues = label_issues.find_issues(tmp_path / "r")
    assert issues.suggested[0] == second
    assert np.array_equal(issues.suggested, bank["ema"][:, :10].argmax(1))
    assert issues.score[0] == pytest.approx(1 - (bank["selected"][0] / 2 + 0.1) / 2)


def test_fewer_outputs_than_classes_are_refused(tmp_path):
    cfg = load_config(None, [f"run.out_dir={tmp_path}", "model.num_outputs=5", *CPU])
    with pytest.raises(ActError, match="model.num_outputs=5 is below the 10 classes of digits"):
        prepare(cfg, decide(cfg))


@pytest.mark.parametrize("value, bound", [(1, ">= 2"), (65537, "<= 65536")])
def test_a_head_of_one_output_or_past_65536_is_refused_by_the_config(value, bound):
    with pytest.raises(ActError, match=f"model.num_outputs={value} must be {bound}"):
        load_config(None, [f"model.num_outputs={value}"])


def test_the_food101n_config_builds_the_public_200_output_head(tmp_path):
    root = write_food101n(tmp_path / "Food-101N", tmp_path / "food-101")
    cfg = load_config("configs/food101n.yaml", [f"data.root={root}", "model.name=tinycnn", "model.pretrained=none",
                                                "data.image_size=8", f"run.out_dir={tmp_path / 'runs'}", *CPU])
    assert cfg.model.num_outputs == 200
    run = prepare(cfg, decide(cfg))
    images, _ = next(iter(run.pipeline.test_batches()))
    assert run.ctx.rtm(images).shape[1] == 200 and run.pipeline.source.num_classes == 2


# ---- truncated images --------------------------------------------------------------------

def write_jpeg_folder(root: Path, truncated: dict[str, float]) -> Path:
    """root/{train,val}/{a,b}/<i>.jpg, 48 px (its JPEG data starts at about 30% of the file); each
    file named in `truncated` cut to that fraction."""
    for s, split in enumerate(("train", "val")):
        for c, name in enumerate(("a", "b")):
            for i in range(4):
                write_image(str(root / split / name / f"{i}.jpg"), 48, seed=100 * s + 10 * c + i)
    for name, fraction in truncated.items():
        data = (root / name).read_bytes()
        (root / name).write_bytes(data[:int(len(data) * fraction)])
    return root


CUT = {"train/a/1.jpg": 0.6, "val/b/2.jpg": 0.7}


def web_config(root, tmp_path, *extra):
    return load_config("configs/web/aircraft.yaml", [
        f"data.root={root}", "data.image_size=16", "model.name=tinycnn", "optim.batch_size=4", "optim.epochs=2",
        "optim.warmup_epochs=1", "optim.lr_decay=constant", "pipeline.name=reference",
        f"run.out_dir={tmp_path / 'runs'}", "run.name=r", *CPU, *extra])


def test_a_truncated_jpeg_of_a_web_data_set_trains_and_is_listed_in_the_summary(tmp_path):
    root = write_jpeg_folder(tmp_path / "web", CUT)
    summary = training.train(web_config(root, tmp_path, "model.pretrained=none"))
    expected = sorted(str(root / name) for name in CUT)
    assert summary["truncated_images"] == {"count": 2, "files": expected}
    written = json.loads((tmp_path / "runs" / "r" / "summary.json").read_text())
    assert written["truncated_images"]["files"] == expected
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # scoped to the decode that needed it


def test_a_truncated_file_still_stops_a_data_set_whose_public_code_does_not_recover_it(tmp_path):
    root = write_jpeg_folder(tmp_path / "folder", CUT)
    source = read_source("folder", str(root), image_size=16)
    index = source.train.files.index(str(root / "train/a/1.jpg"))
    with pytest.raises(ActError, match=r"train/a/1.jpg cannot be read: image file is truncated"):
        open_image(source.train, index, source.recover_truncated)


def test_a_file_pil_cannot_open_stops_a_web_data_set_with_its_name(tmp_path):
    root = write_jpeg_folder(tmp_path / "web", {"train/b/0.jpg": 0.05})
    source = read_source("web-aircraft", str(root), image_size=16)
    index = source.train.files.index(str(root / "train/b/0.jpg"))
    with pytest.raises(ActError, match=r"image .*train/b/0.jpg cannot be read"):
        open_image(source.train, index, source.recover_truncated)


def test_a_conversion_stores_and_lists_the_recovered_pixels_of_a_truncated_file(tmp_path):
    root = write_jpeg_folder(tmp_path / "web", CUT)
    manifest = convert(web_config(root, tmp_path), "dali", tmp_path / "out")
    listed = [{"split": "train", "file": str(root / "train/a/1.jpg")},
              {"split": "test", "file": str(root / "val/b/2.jpg")}]
    assert manifest["truncated_images"] == {"count": 2, "files": listed}
    assert manifest["counts"] == {"train": 8, "test": 8} and manifest["bad_files"] == []
    assert read_converted(tmp_path / "out").recovered == tuple(entry["file"] for entry in listed)
    source = read_source("web-aircraft", str(root), image_size=16)
    index = source.train.files.index(str(root / "train/a/1.jpg"))
    piped, recovered = open_image(source.train, index, source.recover_truncated)
    stored, truncated = load_rgb(source.train.files[index], 10**6, source.recover_truncated)
    assert recovered and truncated and np.array_equal(np.asarray(piped), np.asarray(stored))
    with Image.open(tmp_path / "out" / "images" / "train" / f"{index:08d}.jpg") as img:
        written = np.asarray(img.convert("RGB"), dtype=np.float64)
    shrunk = np.asarray(load_rgb(source.train.files[index], 32, True)[0], dtype=np.float64)
    assert np.abs(written - shrunk).mean() < 8  # the recovered pixels, re-encoded as JPEG


# ---- the weights a run needs ---------------------------------------------------------------

@pytest.mark.parametrize("config", ["configs/web/aircraft.yaml", "configs/web/bird.yaml", "configs/web/car.yaml",
                                    "configs/food101n.yaml"])
def test_a_web_or_food_config_without_weights_is_refused_naming_the_papers_file(tmp_path, config):
    cfg = load_config(config, ["data.root=/nowhere", f"run.out_dir={tmp_path}"])
    with pytest.raises(ActError, match=r"model.pretrained is unset.*resnet50-0676ba61.pth.*model.pretrained=none"):
        training.train(cfg)
    assert not os.listdir(tmp_path)  # refused before a run folder was made


def test_a_web_config_trains_from_scratch_with_model_pretrained_none(tmp_path):
    root = write_jpeg_folder(tmp_path / "web", {})
    cfg = web_config(root, tmp_path, "model.pretrained=none")
    assert cfg.model.pretrained == "none"
    summary = training.train(cfg)
    assert summary["epochs"] == 2 and summary["truncated_images"]["count"] == 0
