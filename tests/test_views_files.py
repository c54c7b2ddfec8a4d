"""The DALI (CPU) and FFCV pipelines' views against the reference pipeline's, on the same JPEG files.

The images encode their own coordinates (red rises with the column, green with the row), so a
view tells where its crop lies in the resized image, how much of it it spans and whether it
is mirrored. Each statistic is compared with the reference pipeline's over 192 samples per
pipeline; every tolerance is about four standard errors of the difference, so a seeded run
passes and a different view (FFCV's resized crop, a shared crop, DALI's RandAugment) fails.
"""
import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from act.commands.convert import convert
from act.config import load_config
from act.datasets.converted import read_converted
from act.errors import ActError
from pipelines import build_pipeline

INSTALLED = {"reference": True, "dali": importlib.util.find_spec("nvidia.dali") is not None,
             "ffcv": importlib.util.find_spec("ffcv") is not None}
FAST = [pytest.param(name, marks=pytest.mark.skipif(not INSTALLED[name], reason=f"the {name} extra is not installed"))
        for name in ("dali", "ffcv")]
SIZE, EPOCHS = 16, 6


def gradient(height: int, width: int) -> np.ndarray:
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return np.stack([x, y, np.full_like(x, 96)], axis=-1).round().astype(np.uint8)


def converted(root, shapes: list[tuple[int, int]], resize: int, fmt: str):
    """A converted image folder of gradient images of the given (height, width), its Source
    resized to `resize` before the 16-pixel crop."""
    for i, (h, w) in enumerate(shapes):
        for split in ("train", "val"):
            path = root / "images" / split / "c" / f"{i:03d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(gradient(h, w)).save(path, quality=95)
    cfg = load_config(None, ["data.name=folder", f"data.root={root / 'images'}", f"data.image_size={SIZE}",
                             "data.noise.type=none"])
    out = root / fmt
    convert(cfg, fmt, out, progress=False, max_side=64, quality=95)
    source = read_converted(out)
    source.resize = resize
    return source, str(out)


@pytest.fixture(scope="module")
def shaped(tmp_path_factory):
    """Landscape and portrait images, resized to 24 then cropped to 16: room to move on both axes."""
    fmt = "ffcv" if INSTALLED["ffcv"] else "dali"
    return converted(tmp_path_factory.mktemp("shaped"), [(36, 48), (48, 36), (40, 40), (30, 50)] * 8, 24, fmt)


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    """Square images resized to the crop size: both views see the whole image, so the strong view
    shows what its policy did, against the weak view or its mirror."""
    fmt = "ffcv" if INSTALLED["ffcv"] else "dali"
    return converted(tmp_path_factory.mktemp("square"), [(24, 24)] * 32, SIZE, fmt)


def pipeline(name: str, data, views: str = "public", identity_policy: bool = False):
    source, path = data
    p = build_pipeline(name, source, source.train.labels, batch_size=16, device=torch.device("cpu"), seed=0,
                       workers=1, path=path, test_batch_size=16, views=views)
    if identity_policy:  # the strong view's crop and flip alone
        if name == "reference":
            p.train_loader.dataset.views.policy = lambda img, rng: img
        else:  # the policy's draws are still made, and not applied
            p.strong_pass = lambda crops, draws: p.normalise(crops)
    return p


def to_uint8(images: torch.Tensor, source) -> np.ndarray:
    mean = torch.tensor(source.mean).view(1, -1, 1, 1) * 255
    std = torch.tensor(source.std).view(1, -1, 1, 1) * 255
    return (images * std + mean).round().clamp(0, 255).to(torch.uint8).numpy()


def views(p) -> tuple[np.ndarray, np.ndarray]:
    """(weak, strong) uint8 N x 3 x 16 x 16 over EPOCHS epochs."""
    batches = [b for epoch in range(EPOCHS) for b in p.train_batches(epoch)]
    return tuple(to_uint8(torch.cat([getattr(b, v) for b in batches]), p.source) for v in ("weak", "strong"))


def geometry(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: mirrored?, left and top edge (fraction of the resized image), span of each axis."""
    red, green = images[:, 0].astype(float) / 255, images[:, 1].astype(float) / 255
    left, right = red[:, :, 0].mean(1), red[:, :, -1].mean(1)
    top, bottom = green[:, 0, :].mean(1), green[:, -1, :].mean(1)
    return {"flip": (left > right).astype(float), "x": np.minimum(left, right), "y": top,
            "x_span": np.abs(right - left), "y_span": bottom - top}


# statistic -> least tolerance on the difference of means (resampling and rounding); the test
# allows 4.5 standard errors of the difference where the samples' spread says more: FFCV's crop
# draws are not seeded, so its side is a new sample every run and the check must hold for any.
GEOMETRY_TOLERANCE = {"flip": 0.2, "x": 0.04, "y": 0.04, "x_span": 0.03, "y_span": 0.03}


def standard_error_of_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))


def assert_same_geometry(got: np.ndarray, want: np.ndarray) -> None:
    g, w = geometry(got), geometry(want)
    for key, least in GEOMETRY_TOLERANCE.items():
        tolerance = max(least, 4.5 * standard_error_of_difference(g[key], w[key]))
        assert abs(g[key].mean() - w[key].mean()) < tolerance, (key, g[key].mean(), w[key].mean(), tolerance)
    for key in ("x", "y"):  # the position is spread as widely (uniform over the same range)
        # a sample std's standard error is about std / sqrt(2 (n - 1))
        spread = np.sqrt(sum(v[key].var() / (2 * (len(v[key]) - 1)) for v in (g, w)))
        tolerance = max(0.03, 4.5 * spread)
        assert abs(g[key].std() - w[key].std()) < tolerance, (key, g[key].std(), w[key].std(), tolerance)


@pytest.fixture(scope="module")
def reference_shaped(shaped):
    return views(pipeline("reference", shaped, identity_policy=True))


def test_the_reference_crops_at_a_uniform_position_a_resized_square_and_flips_half(reference_shaped):
    g = geometry(reference_shaped[0])
    assert abs(g["flip"].mean() - 0.5) < 0.15
    # a 16-pixel crop of a 24-pixel short side spans 15/23 of it; of a 32-pixel long side 15/31
    spans = np.concatenate([g["x_span"], g["y_span"]])
    assert ((np.abs(spans - 15 / 23) < 0.05) | (np.abs(spans - 15 / 31) < 0.05) | (np.abs(spans - 15 / 39) < 0.05)).all()
    assert g["x"].min() < 0.05 and g["x"].max() > 0.25  # the left edge moves over the whole room


@pytest.mark.parametrize("name", FAST)
def test_the_weak_view_crops_and_flips_as_the_reference_does(name, shaped, reference_shaped):
    assert_same_geometry(views(pipeline(name, shaped))[0], reference_shaped[0])


@pytest.mark.parametrize("name", FAST)
def test_the_strong_view_draws_its_own_crop_and_flip(name, shaped, reference_shaped):
    weak, strong = views(pipeline(name, shaped, identity_policy=True))
    assert_same_geometry(strong, reference_shaped[1])
    same = (weak == strong).all(axis=(1, 2, 3)).mean()
    assert same < 0.3  # independent draws: equal only when position and flip happen to agree
    assert abs(np.corrcoef(geometry(weak)["x"], geometry(strong)["x"])[0, 1]) < 0.3


def touched(weak: np.ndarray, strong: np.ndarray) -> dict[str, np.ndarray]:
    """Per sample, against the weak view or its mirror (whichever the strong view is closer to):
    untouched by the policy, inverted and nothing else, and the mean absolute change."""
    candidates = np.stack([weak, weak[..., ::-1]]).astype(int)
    change = np.abs(strong[None].astype(int) - candidates).mean(axis=(2, 3, 4)).min(0)
    inverted = (255 - candidates == strong[None]).all(axis=(2, 3, 4)).any(0)
    return {"untouched": (change == 0).astype(float), "inverted": inverted.astype(float), "change": change / 255}


# statistic -> tolerance (4 standard errors of the difference at 192 samples each)
POLICY_TOLERANCE = {"untouched": 0.18, "inverted": 0.08, "change": 0.04}


@pytest.fixture(scope="module")
def reference_square(square):
    return touched(*views(pipeline("reference", square)))


def test_the_references_policy_leaves_a_quarter_to_a_half_of_the_images_untouched(reference_square):
    # Two slots, each firing with p = 0.5, some ops (autocontrast here) leaving the image as it is.
    assert 0.15 < reference_square["untouched"].mean() < 0.45
    assert reference_square["inverted"].mean() > 0


@pytest.mark.parametrize("name", FAST)
def test_the_strong_view_applies_the_public_policy_as_often_and_as_much_as_the_reference(name, square,
                                                                                         reference_square):
    got = touched(*views(pipeline(name, square)))
    for key, tolerance in POLICY_TOLERANCE.items():
        assert abs(got[key].mean() - reference_square[key].mean()) < tolerance, (key, got[key].mean(),
                                                                                 reference_square[key].mean())


@pytest.mark.parametrize("name", FAST)
def test_the_views_have_the_references_mean_and_std(name, square):
    def moments(p):
        batch = [b for epoch in range(2) for b in p.train_batches(epoch)]
        return [(torch.cat([getattr(b, v) for b in batch]).mean((0, 2, 3)),
                 torch.cat([getattr(b, v) for b in batch]).std((0, 2, 3))) for v in ("weak", "strong")]

    for (mean, std), (ref_mean, ref_std) in zip(moments(pipeline(name, square)), moments(pipeline("reference", square))):
        torch.testing.assert_close(mean, ref_mean, atol=0.15, rtol=0)
        torch.testing.assert_close(std, ref_std, atol=0.15, rtol=0)


@pytest.mark.skipif(not INSTALLED["ffcv"], reason="the ffcv extra is not installed")
def test_ffcvs_resized_crop_is_a_named_variant_whose_strong_view_reuses_the_weak_crop(shaped):
    weak, strong = views(pipeline("ffcv", shaped, views="ffcv-resized-crop", identity_policy=True))
    assert (weak == strong).all()
    spans = geometry(weak)["x_span"]
    assert spans.std() > 0.1  # a random scale, where the public crop spans a fixed part


@pytest.mark.skipif(not INSTALLED["dali"], reason="the dali extra is not installed")
def test_dalis_randaugment_is_a_named_variant_that_changes_the_strong_view(square, reference_square):
    got = touched(*views(pipeline("dali", square, views="dali-randaugment")))
    assert abs(got["untouched"].mean() - reference_square["untouched"].mean()) > POLICY_TOLERANCE["untouched"]


@pytest.mark.parametrize("name,views_", [("reference", "dali-randaugment"), ("dali", "ffcv-resized-crop")])
def test_a_variant_of_another_pipeline_is_refused_naming_both_keys(name, views_, square):
    if not INSTALLED[name]:
        pytest.skip(f"the {name} extra is not installed")
    with pytest.raises(ActError, match=f"pipeline.views={views_} is a view of the .* pipeline.name={name}"):
        pipeline(name, square, views=views_)
