"""The tensor pipeline's views against the reference pipeline's on the same arrays (CIFAR and digits families).

The weak view is compared pixel for pixel at the same draws; the strong view statistically:
how often the policy leaves an image untouched (equal to one of its padded crops or their
mirrors), how much it changes the others, and the mean and std of the produced tensors, over
the same 256 images and two epochs, each tolerance about four standard errors of the difference.
"""
import numpy as np
import pytest
import torch
from support.datafactory import array_source
from PIL import Image

from pipelines import build_pipeline
from pipelines.reference import Views, crop_flip


def pipeline(name, source, **kw):
    return build_pipeline(name, source, source.train.labels, batch_size=64, device=torch.device("cpu"), seed=0,
                          workers=0, **kw)


@pytest.mark.parametrize("augment,size,channels", [("cifar", 32, 3), ("digits", 8, 1)])
def test_the_tensor_weak_view_equals_the_references_for_the_same_draws(augment, size, channels):
    source = array_source(64, size=size, channels=channels, augment=augment)
    tensor = pipeline("tensor", source)
    images = tensor.train_images
    dy, dx, flip = tensor.draw_weak(len(images), torch.Generator().manual_seed(5))
    got = tensor.apply_weak(images, dy, dx, flip).permute(0, 2, 3, 1).numpy()
    views = Views(source)
    for i, pixels in enumerate(source.train.images):
        img = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
        want = crop_flip(img, size, views.spec.padding, int(dx[i]), int(dy[i]), flip is not None and bool(flip[i]))
        assert np.array_equal(got[i], np.asarray(want).reshape(got[i].shape)), i


def candidates(image: np.ndarray, padding: int) -> np.ndarray:
    """Every padded crop of an H x W x C image and its mirror: the weak view's possible outcomes (K x C x H x W)."""
    h, w = image.shape[:2]
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    crops = [padded[y:y + h, x:x + w] for y in range(2 * padding + 1) for x in range(2 * padding + 1)]
    return np.stack(crops + [c[:, ::-1] for c in crops]).transpose(0, 3, 1, 2)


def strong_views(p, source) -> tuple[np.ndarray, np.ndarray]:
    """(strong views as uint8 N x C x H x W, the index of each) over two epochs."""
    batches = [b for epoch in range(2) for b in p.train_batches(epoch)]
    strong = torch.cat([b.strong for b in batches])
    pixels = strong * torch.tensor(source.std).view(1, -1, 1, 1) * 255 + torch.tensor(source.mean).view(1, -1, 1, 1) * 255
    return pixels.round().clamp(0, 255).to(torch.uint8).numpy(), torch.cat([b.index for b in batches]).numpy()


def policy_effect(p, source) -> dict[str, float]:
    strong, index = strong_views(p, source)
    change = np.array([np.abs(candidates(source.train.images[i], 4).astype(int) - s.astype(int)).mean(axis=(1, 2, 3)).min()
                       for s, i in zip(strong, index)])
    return {"untouched": float((change == 0).mean()), "change": float(change.mean() / 255)}


def test_the_tensor_strong_view_applies_the_cifar10_policy_as_often_and_as_much_as_the_reference():
    source = array_source(256, n_test=20)
    got, want = (policy_effect(pipeline(name, source), source) for name in ("tensor", "reference"))
    # Both coins of the 25 sub-policies fail for 21.7% of the images; more stay as they are where an
    # op changes nothing (autocontrast of random pixels spanning 0..255). 512 samples each: the
    # standard error of the difference is about 0.03.
    assert 0.2 < want["untouched"] < 0.5
    assert abs(got["untouched"] - want["untouched"]) < 0.12, (got, want)
    assert abs(got["change"] - want["change"]) < 0.03, (got, want)


@pytest.mark.parametrize("view", ["weak", "strong"])
def test_the_tensor_views_have_the_references_mean_and_std(view):
    source = array_source(256, n_test=20)

    def moments(name):
        out = torch.cat([getattr(b, view) for epoch in range(2) for b in pipeline(name, source).train_batches(epoch)])
        return out.mean((0, 2, 3)), out.std((0, 2, 3))

    for got, want in zip(moments("tensor"), moments("reference")):
        torch.testing.assert_close(got, want, atol=0.05, rtol=0)


def test_the_views_and_the_ntm_plan_are_recorded_in_the_run_folder(tmp_path):
    import io
    import json

    import yaml

    from act.run import loop as training
    from act.config import load_config

    cfg = load_config(None, [f"run.out_dir={tmp_path}", "optim.epochs=2", "optim.warmup_epochs=1",
                             "optim.lr_decay=cosine:1,5e-4,2", "data.train_limit=200", "data.test_limit=50",
                             "run.progress=false", "optim.ntm_lr_plan=step:1,0.5"])
    training.train(cfg, out=io.StringIO())
    run = next(tmp_path.iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["views"] == "public" and summary["pipeline"] == "tensor"
    assert yaml.safe_load((run / "config.yaml").read_text())["pipeline"]["views"] == "public"
    lr1 = [json.loads(line)["lr1"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lr1 == [0.04, 0.02]  # the demo's lr1, halved from epoch 1
