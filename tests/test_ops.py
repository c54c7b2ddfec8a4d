"""Batched augmentation ops against PIL one by one, the policies end to end against PIL, and the
policies' statistics."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pipelines import pil_ops
from pipelines.augment_table import (
    AUTOAUGMENT_OPS,
    CIFAR10_POLICY,
    GREY_FILL,
    RAND_AUGMENT_ORDER,
)
from pipelines.augment_table import OPS as SPECS
from pipelines.autoaugment_pil import ENHANCE, MAGNITUDES, CIFAR10Policy, pil_op
from pipelines.ops import autoaugment_cifar10, batch_crop, batch_flip_lr, rand_augment
from pipelines.ops import policy as batched_policy
from pipelines.ops.masked import apply_to_picked
from pipelines.ops.policy import DRAWS, draw_autoaugment, draw_rand_augment, op_value
from pipelines.ops.slot import INDEX, NONE, OPS, Draws, apply_draws
from support.images import IMAGES, aa_value, to_batch

PATHS = pytest.mark.parametrize("static", [False, True], ids=["picked", "static"])


def to_numpy(batch: torch.Tensor) -> np.ndarray:
    out = batch.permute(0, 2, 3, 1).cpu().numpy()
    return out[..., 0] if out.shape[-1] == 1 else out


def mean_abs_diff(a, b) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def one_slot(name, value, box=None):
    """Draws of one slot in which every sample applies op `name` with its `value`."""
    op = torch.full((len(value),), INDEX[name])
    return Draws(op=op[None], value=value[None], box=None if box is None else box[None])


def aa_tensor(name, images, magnitude, sign, static):
    value = torch.full((len(images),), aa_value(name, magnitude, sign), dtype=torch.float64)
    return to_numpy(apply_draws(to_batch(images), one_slot(name, value), static))


def aa_pil(name, images, magnitude, sign):
    return np.stack([np.asarray(pil_op(name, Image.fromarray(img), magnitude, sign)) for img in images])


# Mean absolute difference allowed (0..255 scale). Every op reproduces PIL's arithmetic (fixed
# point and truncations included), and measures 0 on these images at every bin and sign.
# Colour, point and histogram ops are integer-exact: 0. Geometric ops pick pixels from float64
# coordinates; a point within an ulp of a pixel edge could land one pixel over where PIL's
# rounding differs: a few such pixels are allowed (0.05 is about ten wrong values in 26,000).
TOLERANCE = {name: 0.0 for name in SPECS} | dict.fromkeys(
    ("shearX", "shearY", "translateX", "translateY", "rotate"), 0.05)


@PATHS
@pytest.mark.parametrize("name", sorted(AUTOAUGMENT_OPS))
@pytest.mark.parametrize("level", [0, 3, 6, 9])
@pytest.mark.parametrize("sign", [1, -1])
def test_autoaugment_op_matches_pil(name, level, sign, static):
    magnitude = MAGNITUDES[name][level]
    expected = aa_pil(name, IMAGES, magnitude, sign)
    got = aa_tensor(name, IMAGES, magnitude, sign, static)
    assert got.shape == expected.shape and got.dtype == np.uint8
    assert mean_abs_diff(got, expected) <= TOLERANCE[name]


@PATHS
@pytest.mark.parametrize("name", sorted(AUTOAUGMENT_OPS))
@pytest.mark.parametrize("sign", [1, -1])
def test_autoaugment_op_matches_pil_on_grey_images(name, sign, static):
    grey = np.stack([np.asarray(Image.fromarray(img).convert("L")) for img in IMAGES])
    magnitude = MAGNITUDES[name][8]
    got = aa_tensor(name, grey, magnitude, sign, static)
    assert mean_abs_diff(got, aa_pil(name, grey, magnitude, sign)) <= TOLERANCE[name]


class ScriptedRng:
    """Stands in for the numpy Generator pil_ops draws from: random() gives the sign
    (< 0.5 is +), integers() gives the scripted cutout centre, x then y."""

    def __init__(self, sign, centre=(0, 0)):
        self.sign = sign
        self.centre = [int(c) for c in centre]

    def random(self):
        return 0.25 if self.sign > 0 else 0.75

    def integers(self, low, high):
        return self.centre.pop(0)


@PATHS
@pytest.mark.parametrize("name", sorted(RAND_AUGMENT_ORDER))
@pytest.mark.parametrize("level", [1, 5, 9])
@pytest.mark.parametrize("sign", [1, -1])
def test_rand_augment_op_matches_pil_ops(name, level, sign, static):
    n, size = len(IMAGES), IMAGES.shape[1]
    centre = np.random.RandomState(level).randint(0, size, (n, 2)).astype(np.float64)
    expected = np.stack([np.asarray(pil_ops.RAND_AUGMENT_OPS[name](Image.fromarray(img), level, ScriptedRng(sign, c)))
                         for img, c in zip(IMAGES, centre)])
    op = torch.full((n,), INDEX[name])
    value = op_value(op, torch.full((n,), level), torch.full((n,), float(sign), dtype=torch.float64))
    box = torch.cat([value[:, None], torch.from_numpy(centre)], dim=1)  # cutout's value is its side
    got = to_numpy(apply_draws(to_batch(IMAGES), one_slot(name, value, box), static))
    assert mean_abs_diff(got, expected) <= TOLERANCE[name]


def test_the_pil_and_batched_ops_are_the_tables_ops():
    assert list(OPS) == list(SPECS) and set(pil_ops.RAND_AUGMENT_OPS) == set(SPECS) and len(SPECS) == 15
    assert set(MAGNITUDES) == set(AUTOAUGMENT_OPS) == set(SPECS) - {"cutout"}
    assert set(ENHANCE) == {name for name, spec in SPECS.items() if spec.offset == 1.0}


def test_both_rand_augment_draws_index_one_list_of_the_15_ops():
    assert batched_policy.RAND_AUGMENT_ORDER is pil_ops.RAND_AUGMENT_ORDER and sorted(RAND_AUGMENT_ORDER) == sorted(SPECS)


def test_every_op_has_a_magnitude_per_bin_and_a_random_sign_only_if_directed():
    for name, spec in SPECS.items():
        assert len(spec.magnitude) == 10 and (spec.directed or not spec.random_sign), name


def test_pil_rotate_with_fill_is_cifar10policys_rgba_composite():
    """CIFAR10Policy rotates an RGBA copy and composites it over grey; pil_op uses fillcolor."""
    for img in map(Image.fromarray, IMAGES[:4]):
        rot = img.convert("RGBA").rotate(20.0)
        composite = Image.composite(rot, Image.new("RGBA", rot.size, (GREY_FILL,) * 4), rot).convert(img.mode)
        assert np.array_equal(np.asarray(pil_op("rotate", img, 20.0, 1)), np.asarray(composite))


def test_each_sample_gets_its_own_parameter():
    x = to_batch(IMAGES[:4])
    for name, values in (("rotate", [-30.0, 0.0, 10.0, 25.0]), ("contrast", [0.1, 1.0, 1.5, 1.9]),
                         ("solarize", [0.0, 100.0, 200.0, 256.0]), ("shearX", [-0.3, 0.1, 0.2, 0.0])):
        value = torch.tensor(values, dtype=torch.float64)
        batched = OPS[name](x, value)
        for i in range(4):
            assert torch.equal(batched[i], OPS[name](x[i:i + 1], value[i:i + 1])[0]), (name, i)


def test_the_picked_path_leaves_the_samples_it_does_not_pick():
    x = to_batch(IMAGES)
    mask = torch.tensor([True, False, True, True, False, False, True, False, True, False, True])
    value = torch.linspace(-25, 25, len(x), dtype=torch.float64)
    out = apply_to_picked(OPS["rotate"], x, mask, value)
    assert torch.equal(out[~mask], x[~mask]) and torch.equal(out[mask], OPS["rotate"](x[mask], value[mask]))
    assert apply_to_picked(OPS["rotate"], x, torch.zeros(len(x), dtype=torch.bool), value) is x


def sign_of(name: str, value: float) -> int:
    """The sign a policy drew for op `name` whose parameter is `value` (at a bin with magnitude > 0)."""
    return 1 if value >= SPECS[name].offset else -1


@PATHS
def test_autoaugment_applies_each_samples_two_ops_in_order_as_pil_does(static):
    n = 96
    x = np.concatenate([IMAGES] * 9)[:n]
    sub, draws = draw_autoaugment(n, torch.Generator().manual_seed(7), torch.device("cpu"))
    got = to_numpy(autoaugment_cifar10(to_batch(x), torch.Generator().manual_seed(7), static))
    for i in range(n):
        img = Image.fromarray(x[i])
        spec = CIFAR10_POLICY[int(sub[i])]
        for stage in range(2):
            name, level = spec[1 + 3 * stage], spec[2 + 3 * stage]
            if draws.op[stage, i] != NONE:
                assert draws.op[stage, i] == INDEX[name]
                img = pil_op(name, img, MAGNITUDES[name][level], sign_of(name, float(draws.value[stage, i])))
        assert mean_abs_diff(got[i], np.asarray(img)) <= 0.05, (i, spec)


@PATHS
def test_rand_augment_applies_each_samples_ops_in_order_as_pil_ops_does(static):
    n, size = 96, IMAGES.shape[1]
    x = np.concatenate([IMAGES] * 9)[:n]
    levels, draws = draw_rand_augment(n, size, size, torch.Generator().manual_seed(3), torch.device("cpu"), 2, 0.5, 10)
    got = to_numpy(rand_augment(to_batch(x), torch.Generator().manual_seed(3), static))
    names = list(OPS)
    for i in range(n):
        img = Image.fromarray(x[i])
        for s in range(2):
            if draws.op[s, i] != NONE:
                name = names[int(draws.op[s, i])]
                rng = ScriptedRng(sign_of(name, float(draws.value[s, i])), draws.box[s, i, 1:].tolist())
                img = pil_ops.RAND_AUGMENT_OPS[name](img, int(levels[s, i]), rng)
        assert mean_abs_diff(got[i], np.asarray(img)) <= 0.05, i


def test_sub_policies_are_uniform_and_each_op_fires_at_its_probability():
    n = 20000
    sub, draws = draw_autoaugment(n, torch.Generator().manual_seed(0), torch.device("cpu"))
    counts = torch.bincount(sub, minlength=25).double()
    chi2 = float(((counts - n / 25) ** 2 / (n / 25)).sum())
    assert chi2 < 51.2  # chi-square, 24 degrees of freedom, p = 0.001
    for k, spec in enumerate(CIFAR10_POLICY):
        picked = sub == k
        for stage in range(2):
            p, name, level = spec[3 * stage:3 * stage + 3]
            op = draws.op[stage][picked]
            assert ((op == INDEX[name]) | (op == NONE)).all()
            rate = float((op != NONE).double().mean())
            assert abs(rate - p) <= 4 * (p * (1 - p) / int(picked.sum())) ** 0.5 + 1e-12, (k, stage, rate, p)
            magnitude = float(MAGNITUDES[name][level])
            value = draws.value[stage][picked] - SPECS[name].offset
            assert torch.allclose(value.abs(), torch.full_like(value, magnitude))
            if SPECS[name].random_sign and magnitude > 0:
                assert abs(float((value > 0).double().mean()) - 0.5) < 0.1, (k, stage, name)
            else:
                assert (value >= 0).all(), (k, stage, name)  # rotate: always counter-clockwise


def test_rand_augment_draws_ops_and_levels_uniformly_and_fires_half_of_them():
    n = 30000
    levels, draws = draw_rand_augment(n, 32, 32, torch.Generator().manual_seed(0), torch.device("cpu"), 2, 0.5, 10)
    for op, level in zip(draws.op, levels):
        fired = op[op != NONE]
        assert abs(len(fired) / n - 0.5) <= 4 * (0.25 / n) ** 0.5
        counts = torch.bincount(fired, minlength=15).double()  # RandAugment uses all 15 ops
        expected = len(fired) / 15
        assert float(((counts - expected) ** 2 / expected).sum()) < 36.1  # 14 degrees of freedom, p = 0.001
        assert level.min() == 1 and level.max() == 9
        counts = torch.bincount(level, minlength=10)[1:].double()
        assert float(((counts - n / 9) ** 2 / (n / 9)).sum()) < 26.1  # 8 degrees of freedom, p = 0.001
    assert not torch.equal(draws.op[0], draws.op[1])  # the two ops are drawn independently


def test_crop_offsets_cover_all_81_positions_of_the_zero_padded_image():
    n = 4000
    x = torch.arange(1, 65, dtype=torch.uint8).view(1, 1, 8, 8).expand(n, 3, 8, 8)  # no zero inside
    out = batch_crop(x, 4, torch.Generator().manual_seed(0))
    padded = F.pad(x[0], (4, 4, 4, 4))  # zeros around
    windows = torch.stack([padded[:, r:r + 8, c:c + 8] for r in range(9) for c in range(9)])
    matches = (out[:, None] == windows[None]).flatten(2).all(dim=2)  # n x 81
    assert (matches.sum(dim=1) == 1).all()  # every crop is exactly one window of the zero-padded image
    counts = matches.sum(dim=0).double()
    assert counts.min() > 0
    assert float(((counts - n / 81) ** 2 / (n / 81)).sum()) < 124.8  # 80 degrees of freedom, p = 0.001


def test_crop_without_padding_is_the_identity():
    x = to_batch(IMAGES)
    assert torch.equal(batch_crop(x, 0, torch.Generator().manual_seed(0)), x)


def test_flip_mirrors_about_half_of_the_images():
    n = 20000
    x = torch.arange(4, dtype=torch.uint8).view(1, 1, 1, 4).expand(n, 1, 2, 4)
    out = batch_flip_lr(x, torch.Generator().manual_seed(0))
    flipped = (out == x.flip(-1)).flatten(1).all(dim=1)
    assert (flipped | (out == x).flatten(1).all(dim=1)).all()
    assert abs(float(flipped.double().mean()) - 0.5) <= 4 * (0.25 / n) ** 0.5


AUGMENTATIONS = {
    "crop": lambda x, g: batch_crop(x, 4, g), "flip": batch_flip_lr,
    "flip_static": lambda x, g: batch_flip_lr(x, g, static=True),
    "autoaugment": autoaugment_cifar10, "rand_augment": rand_augment,
    "autoaugment_static": lambda x, g: autoaugment_cifar10(x, g, True),
    "rand_augment_static": lambda x, g: rand_augment(x, g, True),
}


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
@pytest.mark.parametrize("channels", [3, 1])
def test_augmentation_is_fixed_by_the_seed_and_keeps_uint8_and_shape(name, channels):
    x = to_batch(np.concatenate([IMAGES] * 6))[:, :channels].contiguous()
    augment = AUGMENTATIONS[name]
    a = augment(x, torch.Generator().manual_seed(5))
    assert a.dtype == torch.uint8 and a.shape == x.shape
    assert torch.equal(a, augment(x, torch.Generator().manual_seed(5)))
    assert not torch.equal(a, augment(x, torch.Generator().manual_seed(6)))


@PATHS
def test_policies_leave_their_input_untouched(static):
    x = to_batch(IMAGES)
    before = x.clone()
    autoaugment_cifar10(x, torch.Generator().manual_seed(0), static)
    rand_augment(x, torch.Generator().manual_seed(0), static)
    assert torch.equal(x, before)


def test_cifar10_policy_on_pil_images_keeps_size_and_mode():
    policy, rng = CIFAR10Policy(), np.random.default_rng(0)
    for img in IMAGES[:8]:
        for mode in ("RGB", "L"):
            out = policy(Image.fromarray(img).convert(mode), rng)
            assert out.size == (32, 32) and out.mode == mode
