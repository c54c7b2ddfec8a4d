"""The device-resident tensor pipeline: epoch contract, views, selection by `auto`."""
import pytest
import torch
from support.datafactory import array_source

from act.datasets.base import Source, Split
from act.errors import ActError
from benchmarks.recorder import OpRecorder
from pipelines import build_pipeline


def tensor(source, **kw):
    args = dict(batch_size=32, device=torch.device("cpu"), seed=1)
    args.update(kw)
    return build_pipeline("tensor", source, (source.train.labels + 1) % 5, **args)


def test_every_index_once_per_epoch_with_the_last_partial_batch_kept():
    batches = list(tensor(array_source(300, n_test=70)).train_batches(0))
    assert [len(b.index) for b in batches] == [32] * 9 + [12]
    assert sorted(torch.cat([b.index for b in batches]).tolist()) == list(range(300))


def test_epoch_order_matches_the_reference_pipeline():
    source = array_source(100, n_test=70)
    a = torch.cat([b.index for b in tensor(source).train_batches(3)])
    b = torch.cat([b.index for b in build_pipeline("reference", source, source.train.labels, batch_size=32,
                                                     device=torch.device("cpu"), seed=1).train_batches(3)])
    assert torch.equal(a, b)


def test_batches_are_a_function_of_seed_and_epoch():
    source = array_source(100, n_test=70)
    first = list(tensor(source).train_batches(2))
    again = list(tensor(source).train_batches(2))
    other = list(tensor(source).train_batches(3))
    assert all(torch.equal(x.weak, y.weak) and torch.equal(x.strong, y.strong) for x, y in zip(first, again))
    assert not torch.equal(first[0].index, other[0].index)


def test_labels_follow_the_indices():
    source = array_source(100, n_test=70)
    for b in tensor(source).train_batches(0):
        assert torch.equal(b.label, torch.as_tensor((source.train.labels + 1) % 5)[b.index])
        assert torch.equal(b.true_label, torch.as_tensor(source.train.labels)[b.index])


def test_weak_view_is_a_padded_crop_possibly_mirrored():
    source = array_source(40)
    images = torch.as_tensor(source.train.images).permute(0, 3, 1, 2).float()
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for b in tensor(source).train_batches(0):
        pixels = b.weak * 0.25 * 255 + 0.5 * 255
        for i, img in zip(b.index.tolist(), pixels):
            windows = [view[:, y:y + 32, x:x + 32] for view in (padded[i], padded[i].flip(-1))
                       for y in range(9) for x in range(9)]
            assert any(torch.allclose(img, w, atol=1e-3) for w in windows)


def test_strong_view_differs_from_the_weak_one_and_stays_normalised():
    b = next(iter(tensor(array_source(64)).train_batches(0)))
    assert b.strong.shape == b.weak.shape and not torch.equal(b.strong, b.weak)
    assert b.strong.min() >= -2.0 - 1e-5 and b.strong.max() <= 2.0 + 1e-5


def test_digits_use_one_pixel_padding_and_no_flip():
    source = array_source(50, size=8, channels=1, augment="digits")
    source.train.images[:] = 0
    source.train.images[:, :, :2] = 255
    for b in tensor(source, strong=False).train_batches(0):
        assert b.strong is None
        assert (b.weak[:, 0, :, 4:] < 0).all()  # the bright left edge never reaches the right half


def test_test_batches_are_the_normalised_test_images():
    source = array_source(100, n_test=70)
    images, labels = zip(*tensor(source, test_batch_size=32).test_batches())
    got = torch.cat(images)
    expected = (torch.as_tensor(source.test.images).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(got, expected)
    assert torch.equal(torch.cat(labels), torch.as_tensor(source.test.labels))


def test_file_sources_are_refused_with_a_pointer_to_the_reference_pipeline(tmp_path):
    source = Source(name="f", train=Split(labels=[0], files=["a.jpg"]), test=Split(labels=[0], files=["a.jpg"]),
                    classes=["a", "b"], augment="web")
    with pytest.raises(ActError, match="pipeline.name=reference"):
        tensor(source)


@pytest.mark.parametrize("augment,size,channels", [("cifar", 32, 3), ("digits", 8, 1), ("web", 32, 3)])
def test_static_and_picked_views_give_the_same_batches(augment, size, channels):
    source = array_source(100, size=size, channels=channels, augment=augment)
    static = list(tensor(source, static=True).train_batches(1))
    picked = list(tensor(source, static=False).train_batches(1))
    assert all(torch.equal(a.weak, b.weak) and torch.equal(a.strong, b.strong) for a, b in zip(static, picked))


def test_the_static_path_is_the_default_off_the_cpu_only():
    source = array_source(10)
    assert not tensor(source).static and tensor(source, static=True).static


@pytest.mark.parametrize("augment", ["cifar", "web"])
def test_static_batches_are_built_without_a_host_sync(augment):
    pipeline = tensor(array_source(300, augment=augment), static=True)
    next(iter(pipeline.train_batches(0)))  # the per-device tables are built once, before
    with OpRecorder() as recorder:
        batches = list(pipeline.train_batches(1))
    assert len(batches) == 10 and pipeline.chunk_batches() > 1  # whole chunks of several batches
    assert dict(recorder.record.syncs) == {}
