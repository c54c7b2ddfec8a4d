"""Batched augmentation ops against PIL, one by one, and the policies' statistics."""
import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.autoaugment_pil import CIFAR10_POLICY, MAGNITUDES, pil_op
from pipelines.ops import autoaugment_cifar10, batch_crop, batch_flip_lr, rand_augment
from pipelines.ops.cutout import cutout
from pipelines.ops.policy import OPS, RA_NAMES
from pipelines.pil_ops import RAND_AUGMENT_OPS


def scenes(n=8, size=32, seed=0):
    """Real-looking RGB images: gradients, a bright disc, a dark bar, fine texture."""
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = []
    for _ in range(n):
        base = rs.uniform(20, 120, 3)[None, None] + rs.uniform(0, 3, 3)[None, None] * (xx + yy)[..., None]
        cy, cx, r = rs.uniform(8, 24), rs.uniform(8, 24), rs.uniform(4, 9)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)[..., None] * rs.uniform(60, 120, 3)[None, None]
        bar = np.zeros((size, size, 1), np.float32)
        y0 = rs.randint(0, size - 6)
        bar[y0:y0 + 5] = -rs.uniform(20, 60)
        texture = rs.normal(0, 6, (size, size, 3))
        out.append(np.clip(base + disc + bar + texture, 0, 255).astype(np.uint8))
    return np.stack(out)


IMAGES = scenes()


def batch_of(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def pil_reference(name, images, magnitude, sign):
    return np.stack([np.asarray(pil_op(name, Image.fromarray(img), magnitude, sign)) for img in images])


def ours(name, images, magnitude, sign):
    value = torch.full((len(images),), float(magnitude) * (sign if name in (
        "shearX", "shearY", "translateX", "translateY", "rotate", "color", "contrast", "sharpness", "brightness") else 1))
    return OPS[name](batch_of(images), value).permute(0, 2, 3, 1).numpy()


# Mean absolute difference allowed (0..255 scale), on 8 scenes x 3 levels x 2 signs. Measured:
# 0 for every op but autocontrast (0.012: a truncation lands one unit off on a few pixels) and
# the shears (0.6: PIL's bicubic kernel uses a = -0.5, grid_sample's a = -0.75).
TOLERANCE = {"posterize": 0.0, "solarize": 0.0, "invert": 0.0, "autocontrast": 0.05, "equalize": 0.05,
             "brightness": 0.05, "color": 0.05, "contrast": 0.05, "sharpness": 0.05,
             "translateX": 0.05, "translateY": 0.05, "rotate": 0.1, "shearX": 1.0, "shearY": 1.0}


@pytest.mark.parametrize("name", sorted(TOLERANCE))
@pytest.mark.parametrize("level", [1, 5, 9])
@pytest.mark.parametrize("sign", [1, -1])
def test_each_op_matches_pil(name, level, sign):
    magnitude = MAGNITUDES[name][level]
    expected = pil_reference(name, IMAGES, magnitude, sign).astype(np.float64)
    got = ours(name, IMAGES, magnitude, sign).astype(np.float64)
    assert got.shape == expected.shape
    assert np.abs(got - expected).mean() <= TOLERANCE[name], np.abs(got - expected).mean()


@pytest.mark.parametrize("name", ["equalize", "autocontrast", "posterize", "solarize", "contrast", "rotate"])
def test_ops_on_grey_images_match_pil(name):
    grey = IMAGES[..., :1]
    magnitude = MAGNITUDES[name][7]
    expected = np.stack([np.asarray(pil_op(name, Image.fromarray(img[..., 0]), magnitude, 1)) for img in grey])
    got = ours(name, grey, magnitude, 1)[..., 0]
    assert np.abs(got.astype(float) - expected).mean() <= TOLERANCE[name]


def test_each_sample_gets_its_own_parameter():
    x = batch_of(IMAGES[:2])
    out = OPS["brightness"](x, torch.tensor([0.5, 1.5]))
    assert torch.equal(out[0], OPS["brightness"](x[:1], torch.tensor([0.5]))[0])
    assert torch.equal(out[1], OPS["brightness"](x[1:], torch.tensor([1.5]))[0])


def test_crop_is_a_shifted_window_of_the_zero_padded_image():
    x = torch.randint(1, 256, (500, 3, 8, 8), dtype=torch.uint8)
    out = batch_crop(x, 4, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for img, src in zip(out, padded):
        assert any(torch.equal(img, src[:, r:r + 8, c:c + 8]) for r in range(9) for c in range(9))
    assert (out == 0).any() and out.shape == x.shape


def test_crop_offsets_are_uniform_over_the_81_positions():
    x = torch.zeros(8100, 1, 1, 1, dtype=torch.uint8) + 255
    x = torch.nn.functional.pad(x, (0, 31, 0, 31))  # one bright pixel at (0, 0) of a 32x32 image
    out = batch_crop(x, 4, torch.Generator().manual_seed(1))
    hits = (out[:, 0] == 255).nonzero()[:, 1:]
    counts = torch.zeros(9, 9)
    for r, c in hits.tolist():
        counts[r, c] += 1
    # Offsets where the pixel lands inside: (r, c) in 0..4 only (it moves right/down by 4 - offset).
    assert counts[:5, :5].min() > 0 and counts[5:].sum() == 0


def test_flip_happens_half_the_time():
    x = torch.arange(4, dtype=torch.uint8).view(1, 1, 1, 4).expand(20000, 1, 1, 4)
    flipped = (batch_flip_lr(x, torch.Generator().manual_seed(0))[:, 0, 0, 0] == 3).float().mean().item()
    assert abs(flipped - 0.5) < 0.02


def test_policies_are_deterministic_given_the_generator():
    x = batch_of(IMAGES)
    for policy in (autoaugment_cifar10, rand_augment):
        a = policy(x, torch.Generator().manual_seed(5))
        b = policy(x, torch.Generator().manual_seed(5))
        assert torch.equal(a, b) and a.dtype == torch.uint8 and a.shape == x.shape


def test_sub_policies_are_drawn_uniformly_and_ops_fire_at_their_probability(monkeypatch):
    """Record each op call's mask through apply_where, over 20,000 images."""
    import pipelines.ops.policy as policy

    calls = []

    def record(op, images, mask, param):
        calls.append(mask.clone())
        return images

    monkeypatch.setattr(policy, "apply_where", record)
    n = 20000
    gen = torch.Generator().manual_seed(0)
    sub = torch.randint(0, 25, (n,), generator=torch.Generator().manual_seed(0))
    policy.autoaugment_cifar10(torch.zeros(n, 1, 1, 1, dtype=torch.uint8), gen)
    # The policy draws the sub-policy first from the same generator: re-draw it identically.
    assert torch.equal(sub, torch.randint(0, 25, (n,), generator=torch.Generator().manual_seed(0)))
    counts = torch.bincount(sub, minlength=25).float()
    expected = n / 25
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 52.6  # chi-square, 24 degrees of freedom, p = 0.001
    names = policy.AA_NAMES
    stage_masks = [calls[:len(names)], calls[len(names):]]
    for stage, masks in enumerate(stage_masks):
        fired = torch.stack(masks).any(dim=0)
        for k, spec in enumerate(CIFAR10_POLICY):
            picked = sub == k
            p = spec[0] if stage == 0 else spec[3]
            rate = fired[picked].float().mean().item()
            se = (p * (1 - p) / picked.sum().item()) ** 0.5
            assert abs(rate - p) <= 4 * se + 1e-9, (k, stage, rate, p)


def test_rand_augment_draws_ops_uniformly_and_applies_half_of_them(monkeypatch):
    import pipelines.ops.policy as policy

    calls = []
    monkeypatch.setattr(policy, "apply_where", lambda op, images, mask, param: calls.append(mask.clone()) or images)
    n = 30000
    policy.rand_augment(torch.zeros(n, 3, 4, 4, dtype=torch.uint8), torch.Generator().manual_seed(0))
    masks = torch.stack(calls).view(2, len(RA_NAMES), n)
    per_op = masks.float().mean(dim=2)  # P(op k chosen and fired) = 0.5 / 15
    assert torch.allclose(per_op, torch.full_like(per_op, 0.5 / 15), atol=0.004)
    assert abs(masks.any(dim=1).float().mean().item() - 0.5) < 0.01


@pytest.mark.parametrize("name", RA_NAMES)
def test_rand_augment_ops_exist_in_both_pipelines(name):
    assert name in RAND_AUGMENT_OPS


def test_cutout_greys_a_square_around_its_centre():
    x = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    out = cutout(x, torch.tensor([[8.0, 16.0, 16.0]]))
    assert (out[0, :, 12:20, 12:20] == 128).all() and out.sum() == 128 * 3 * 64


def test_policies_run_on_grey_images():
    x = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    assert autoaugment_cifar10(x, torch.Generator().manual_seed(0)).shape == x.shape
    assert rand_augment(x, torch.Generator().manual_seed(0)).shape == x.shape
