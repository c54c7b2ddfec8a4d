"""The reference pipeline: epoch order, determinism, views, errors."""
import numpy as np
import pytest
import torch
from support.datafactory import array_source
from PIL import Image

from act.datasets.base import Source, Split
from act.errors import ActError
from pipelines import build_pipeline
from pipelines.pil_ops import RAND_AUGMENT_OPS


def pipeline(source, **kw):
    args = dict(batch_size=16, device=torch.device("cpu"), seed=3, workers=0)
    args.update(kw)
    return build_pipeline("reference", source, source.train.labels.copy(), **args)


def test_every_index_once_per_epoch_with_the_last_partial_batch_kept():
    p = pipeline(array_source(50))
    batches = list(p.train_batches(0))
    assert [len(b.index) for b in batches] == [16, 16, 16, 2]
    assert sorted(torch.cat([b.index for b in batches]).tolist()) == list(range(50))
    assert p.steps_per_epoch() == 4


def test_epochs_have_different_orders_and_a_seed_fixes_them():
    p = pipeline(array_source(50))
    order0 = torch.cat([b.index for b in p.train_batches(0)])
    order1 = torch.cat([b.index for b in p.train_batches(1)])
    assert not torch.equal(order0, order1)
    assert torch.equal(order0, torch.cat([b.index for b in pipeline(array_source(50)).train_batches(0)]))


def test_batches_do_not_depend_on_the_number_of_workers():
    a = list(pipeline(array_source(40)).train_batches(2))
    b = list(pipeline(array_source(40), workers=2).train_batches(2))
    for x, y in zip(a, b):
        assert torch.equal(x.index, y.index) and torch.equal(x.weak, y.weak) and torch.equal(x.strong, y.strong)


def test_an_epoch_leaves_the_global_torch_rng_alone():
    p = pipeline(array_source(20))
    state = torch.get_rng_state()
    list(p.train_batches(0))
    list(p.test_batches())
    assert torch.equal(torch.get_rng_state(), state)


def test_batch_fields_shapes_and_labels():
    source = array_source(20)
    noisy = (source.train.labels + 1) % 5
    p = build_pipeline("reference", source, noisy, batch_size=8, device=torch.device("cpu"), seed=0, workers=0)
    b = next(iter(p.train_batches(0)))
    assert b.weak.shape == b.strong.shape == (8, 3, 32, 32) and b.weak.dtype == torch.float32
    assert torch.equal(b.label, torch.as_tensor(noisy)[b.index])
    assert torch.equal(b.true_label, torch.as_tensor(source.train.labels)[b.index])


@pytest.mark.parametrize("augment,channels", [("cifar", 3), ("digits", 1)])
def test_the_strong_view_differs_from_the_weak_one_for_most_samples(augment, channels):
    b = next(iter(pipeline(array_source(64, channels=channels, augment=augment), batch_size=64).train_batches(0)))
    differs = (b.weak != b.strong).flatten(1).any(dim=1)
    assert differs.float().mean() > 0.75


def test_weak_only_when_no_strong_view_is_needed():
    b = next(iter(pipeline(array_source(20), strong=False).train_batches(0)))
    assert b.strong is None


def test_test_batches_are_the_normalised_images():
    source = array_source(30)
    images, labels = next(iter(pipeline(source).test_batches()))
    expected = (torch.as_tensor(source.test.images).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(images, expected)
    assert torch.equal(labels, torch.as_tensor(source.test.labels))


def test_weak_view_is_a_padded_crop_of_the_image():
    source = array_source(1, seed=1)
    image = (torch.as_tensor(source.train.images[0]).permute(2, 0, 1).float() / 255 - 0.5) / 0.25
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4), value=-2.0)  # zero pixels normalise to -2
    for epoch in range(10):
        weak = next(iter(pipeline(source, batch_size=1).train_batches(epoch))).weak[0]
        found = any(torch.allclose(weak, view[:, y:y + 32, x:x + 32])
                    for view in (padded, padded.flip(-1)) for y in range(9) for x in range(9))
        assert found


def test_digits_are_never_mirrored():
    source = array_source(200, size=8, channels=1, augment="digits")
    source.train.images[:] = 0
    source.train.images[:, :, :2] = 255  # a bright left edge: a mirror would put it on the right
    weak = next(iter(pipeline(source, batch_size=200).train_batches(0))).weak[:, 0]
    # A 1-pixel shift moves the edge to columns 0..2 at most; a mirror would light columns 5..7.
    assert (weak[:, :, 5:] < 0).all()  # the right part stays dark (normalised below zero)
    assert (weak[:, :, :3] > 0).any(dim=(1, 2)).all()  # and the edge is still there


def test_file_source_resizes_and_crops(tmp_path):
    files = []
    for i in range(6):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(np.random.RandomState(i).randint(0, 256, (60, 80, 3), dtype=np.uint8)).save(path)
        files.append(str(path))
    labels = np.arange(6) % 2
    source = Source(name="f", train=Split(labels=labels, files=files), test=Split(labels=labels, files=files),
                    classes=["a", "b"], augment="web", image_size=32, resize=40)
    b = next(iter(pipeline(source, batch_size=6).train_batches(0)))
    assert b.weak.shape == b.strong.shape == (6, 3, 32, 32)
    images, _ = next(iter(pipeline(source).test_batches()))
    assert images.shape == (6, 3, 32, 32)


def test_file_source_test_view_is_torchvision_resize_and_centre_crop(tmp_path):
    from torchvision import transforms

    # 41 x 61 resized to 40: torchvision truncates the long side to 59, then rounds the crop offset 13.5 to 14.
    files = []
    for i, (h, w) in enumerate([(41, 61), (61, 41), (48, 48)]):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.random.RandomState(i).randint(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        files.append(str(path))
    labels = np.zeros(3, dtype=np.int64)
    source = Source(name="f", train=Split(labels=labels, files=files), test=Split(labels=labels, files=files),
                    classes=["a"], augment="web", image_size=32, resize=40)
    expected = transforms.Compose([transforms.Resize(40), transforms.CenterCrop(32), transforms.ToTensor(),
                                   transforms.Normalize(source.mean, source.std)])
    images, _ = next(iter(pipeline(source).test_batches()))
    for got, file in zip(images, files):
        torch.testing.assert_close(got, expected(Image.open(file).convert("RGB")))


def test_an_unknown_augmentation_family_is_refused():
    source = array_source(4)
    source.augment = "imagenet"
    with pytest.raises(ActError, match="augment='imagenet'"):
        pipeline(source)


def test_a_corrupt_image_is_named(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    source = Source(name="f", train=Split(labels=[0], files=[str(bad)]), test=Split(labels=[0], files=[str(bad)]),
                    classes=["a", "b"], augment="web", image_size=16)
    for workers in (0, 1):
        message = error_message(pipeline(source, workers=workers).train_batches(0))
        assert "broken.jpg cannot be read" in message and "Traceback" not in message


def error_message(batches) -> str:
    """The ActError an iteration raises. A plain except, not pytest.raises: its ExceptionInfo would
    keep the pipeline (and its worker) alive in a reference cycle until the garbage collector runs."""
    try:
        list(batches)
    except ActError as exc:
        return str(exc)
    pytest.fail("no ActError was raised")


@pytest.mark.parametrize("name", sorted(RAND_AUGMENT_OPS))
def test_each_rand_augment_op_keeps_size_and_mode_and_changes_the_image(name):
    yy, xx = np.mgrid[0:32, 0:32]
    texture = np.random.RandomState(0).randint(0, 40, (32, 32))  # sharpness leaves a pure gradient as it is
    pixels = np.stack([xx * 6 + texture, yy * 6 + texture, (xx + yy) * 3], axis=-1).astype(np.uint8)
    img = Image.fromarray(pixels)
    out = RAND_AUGMENT_OPS[name](img, 9, np.random.default_rng(0))
    assert out.size == img.size and out.mode == img.mode
    assert not np.array_equal(np.asarray(out), pixels)


def test_the_cifar10_policy_has_25_sub_policies_of_known_ops():
    from pipelines.autoaugment_pil import CIFAR10_POLICY, MAGNITUDES

    assert len(CIFAR10_POLICY) == 25
    for p1, op1, bin1, p2, op2, bin2 in CIFAR10_POLICY:
        assert op1 in MAGNITUDES and op2 in MAGNITUDES and 0 <= bin1 < 10 and 0 <= bin2 < 10
        assert 0 <= p1 <= 1 and 0 <= p2 <= 1


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_every_autoaugment_op_keeps_size_and_mode(mode):
    from pipelines.autoaugment_pil import MAGNITUDES, pil_op

    yy, xx = np.mgrid[0:32, 0:32]
    texture = np.random.RandomState(0).randint(0, 40, (32, 32))
    pixels = np.stack([xx * 6 + texture, yy * 6 + texture, (xx + yy) * 3], axis=-1).astype(np.uint8)
    img = Image.fromarray(pixels).convert(mode)
    for name, levels in MAGNITUDES.items():
        for sign in (1, -1):
            out = pil_op(name, img, levels[9], sign)
            assert out.size == img.size and out.mode == mode, name
            if not (name == "color" and mode == "L"):  # saturation means nothing to a grey image
                assert not np.array_equal(np.asarray(out), np.asarray(img)), name


def test_geometric_autoaugment_ops_fill_grey():
    from pipelines.autoaugment_pil import pil_op

    img = Image.new("RGB", (32, 32), (255, 0, 0))
    out = np.asarray(pil_op("translateX", img, 0.45, 1))
    # PIL's affine maps output x to input x + 0.45 * 32: the image moves left, grey enters on the right.
    assert (out[:, -14:] == 128).all() and (out[:, :5] == (255, 0, 0)).all()
