"""Readers return the data sets as their real on-disk formats hold them (ACT_SPEC.md "Noisy datasets").

Every test writes a tiny data set in the real format into tmp_path and reads it back.
"""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from support.datafactory import (
    archive_cifar,
    write_cifar,
    write_food101n,
    write_image,
    write_image_folder,
    write_pickle,
)

from act.datasets import dataset_names, read_source
from act.errors import ActError


def cifar_file(root, variant, name):
    folder = {"cifar10n": "cifar-10-batches-py", "cifar100n": "cifar-100-python"}[variant]
    return os.path.join(root, folder, name)


def load_raw(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def test_registry_names_every_data_set():
    assert dataset_names() == ("cifar10n", "cifar100n", "cifar80n", "web-aircraft", "web-bird", "web-car",
                        "food101n", "clothing1m", "folder", "arrays", "digits")


def test_unknown_data_set_is_an_error():
    with pytest.raises(ActError, match="cifar10n"):
        read_source("imagenet", "/nowhere")


# ---- CIFAR ----------------------------------------------------------------------------

@pytest.mark.parametrize("variant,folder,classes", [("cifar10n", "cifar-10-batches-py", 10),
                                                    ("cifar100n", "cifar-100-python", 100)])
def test_cifar_reads_the_same_arrays_from_parent_folder_itself_and_archive(tmp_path, variant, folder, classes):
    root = write_cifar(str(tmp_path / "data"), variant, n_train=23, n_test=7, seed=1)
    archive = archive_cifar(root, variant, str(tmp_path / "packed"))
    forms = [root, os.path.join(root, folder), archive, os.path.dirname(archive)]
    sources = [read_source(variant, form) for form in forms]
    first = sources[0]
    assert (len(first.train), len(first.test), first.num_classes) == (23, 7, classes)
    assert first.train.images.shape == (23, 32, 32, 3) and first.train.images.dtype == np.uint8
    assert (first.augment, first.image_size, first.is_array) == ("cifar", 32, True)
    for other in sources[1:]:
        np.testing.assert_array_equal(other.train.images, first.train.images)
        np.testing.assert_array_equal(other.train.labels, first.train.labels)
        np.testing.assert_array_equal(other.test.images, first.test.images)
        np.testing.assert_array_equal(other.test.labels, first.test.labels)
        assert other.classes == first.classes


def test_cifar10_train_is_the_five_batches_in_file_order(tmp_path):
    root = write_cifar(str(tmp_path), "cifar10n", n_train=12, n_test=3, seed=2)
    raw = [load_raw(cifar_file(root, "cifar10n", f"data_batch_{i}")) for i in range(1, 6)]
    source = read_source("cifar10n", root)
    np.testing.assert_array_equal(source.train.labels, np.concatenate([r["labels"] for r in raw]))
    assert source.classes == [f"class_{i}" for i in range(10)]


def test_cifar_pixel_lands_at_image_row_column_channel(tmp_path):
    root = write_cifar(str(tmp_path), "cifar10n", n_train=10, n_test=2, seed=0)
    data = np.zeros((2, 3072), dtype=np.uint8)
    n, y, x, c = 1, 5, 7, 2
    data[n, c * 1024 + y * 32 + x] = 77  # CIFAR rows: 1024 red, 1024 green, 1024 blue, each row-major
    write_pickle(cifar_file(root, "cifar10n", "test_batch"), {"data": data, "labels": [0, 1]})
    image = read_source("cifar10n", root).test.images
    assert image[n, y, x, c] == 77
    assert image.sum() == 77


def test_cifar_reads_python2_pickles_with_bytes_keys(tmp_path):
    root = write_cifar(str(tmp_path), "cifar100n", n_train=5, n_test=4, seed=3, bytes_keys=True)
    source = read_source("cifar100n", root)
    assert source.classes[99] == "class_99"
    assert len(source.test) == 4


def test_cifar80n_predicts_closed_classes_and_drops_open_test_images(tmp_path):
    root = write_cifar(str(tmp_path), "cifar100n", n_train=300, n_test=200, seed=4)
    full = read_source("cifar100n", root)
    source = read_source("cifar80n", root, openset_ratio=0.2)
    assert source.num_classes == 80 and source.label_space == 100
    assert source.classes == full.classes[:80]
    np.testing.assert_array_equal(source.train.labels, full.train.labels)
    assert (source.train.labels >= 80).any()
    keep = full.test.labels < 80
    assert 0 < keep.sum() < len(full.test)
    np.testing.assert_array_equal(source.test.labels, full.test.labels[keep])
    np.testing.assert_array_equal(source.test.images, full.test.images[keep])


def test_cifar80n_closed_class_count_follows_the_openset_ratio(tmp_path):
    root = write_cifar(str(tmp_path), "cifar100n", n_train=10, n_test=10, seed=5)
    assert read_source("cifar80n", root, openset_ratio=0.4).num_classes == 60


def truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def short_rows(path):
    write_pickle(path, {"data": np.zeros(3000, dtype=np.uint8), "labels": [0]})


def no_labels(path):
    write_pickle(path, {"data": np.zeros((1, 3072), dtype=np.uint8)})


@pytest.mark.parametrize("damage,message", [(truncate, "truncated or corrupt"), (short_rows, "3072"),
                                            (no_labels, "labels")])
def test_damaged_batch_file_is_an_error_naming_it(tmp_path, damage, message):
    root = write_cifar(str(tmp_path), "cifar10n", n_train=10, n_test=2, seed=0)
    damage(cifar_file(root, "cifar10n", "data_batch_3"))
    with pytest.raises(ActError, match=message) as error:
        read_source("cifar10n", root)
    assert "data_batch_3" in str(error.value)


def test_damaged_archive_is_an_error_naming_it(tmp_path):
    root = write_cifar(str(tmp_path / "data"), "cifar10n", n_train=10, n_test=2, seed=0)
    archive = archive_cifar(root, "cifar10n", str(tmp_path / "packed"))
    truncate(archive)
    with pytest.raises(ActError, match="cifar-10-python.tar.gz"):
        read_source("cifar10n", archive)


def test_labels_out_of_range_is_an_error_naming_the_file(tmp_path):
    root = write_cifar(str(tmp_path), "cifar10n", n_train=10, n_test=2, seed=0)
    write_pickle(cifar_file(root, "cifar10n", "test_batch"),
                 {"data": np.zeros((2, 3072), dtype=np.uint8), "labels": [3, 10]})
    with pytest.raises(ActError, match=r"test_batch.*outside \[0, 10\)"):
        read_source("cifar10n", root)


@pytest.mark.parametrize("name,layout", [
    ("cifar10n", "cifar-10-batches-py"), ("cifar100n", "cifar-100-python"), ("cifar80n", "cifar-100-python"),
    ("web-bird", "train/<class>"), ("folder", "val/<class>"), ("food101n", "imagelist.tsv"),
    ("clothing1m", "noisy_label_kv.txt"), ("arrays", ".npz")])
@pytest.mark.parametrize("missing", ["absent", None])
def test_missing_root_is_an_error_naming_the_expected_layout(tmp_path, name, layout, missing):
    root = str(tmp_path / "absent") if missing else None
    with pytest.raises(ActError, match="data.root") as error:
        read_source(name, root, openset_ratio=0.2 if name == "cifar80n" else 0.0)
    assert layout in str(error.value)


# ---- ImageFolder (Web-*, folder) ------------------------------------------------------

def test_image_folder_labels_classes_in_sorted_order_and_files_in_sorted_order(tmp_path):
    root = write_image_folder(str(tmp_path), ["zebra", "apple", "mango"], per_class=2, size=8)
    write_image(os.path.join(root, "train", "apple", "UPPER.JPG"), 8, seed=1)
    write_image(os.path.join(root, "train", "apple", "nested", "deep.webp"), 8, seed=2)
    (tmp_path / "train" / "apple" / "notes.txt").write_text("not an image")
    source = read_source("folder", root)
    assert source.classes == ["apple", "mango", "zebra"]
    train = [os.path.relpath(f, root) for f in source.train.files]
    assert train == ["train/apple/000.png", "train/apple/001.png", "train/apple/UPPER.JPG",
                     "train/apple/nested/deep.webp", "train/mango/000.png", "train/mango/001.png",
                     "train/zebra/000.png", "train/zebra/001.png"]
    assert source.train.labels.tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    assert source.test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert all(os.path.relpath(f, root).startswith("val/") for f in source.test.files)
    assert (source.augment, source.image_size, source.resize, source.is_array) == ("web", 224, 256, False)


@pytest.mark.parametrize("name", ["web-aircraft", "web-bird", "web-car"])
def test_web_data_sets_are_image_folders_seen_at_448(tmp_path, name):
    root = write_image_folder(str(tmp_path), ["a", "b"], per_class=1, size=8)
    source = read_source(name, root)
    assert (source.name, source.num_classes, len(source.train), len(source.test)) == (name, 2, 2, 2)
    assert (source.augment, source.image_size, source.resize) == ("web", 448, 448)


def test_val_class_missing_from_train_is_an_error(tmp_path):
    root = write_image_folder(str(tmp_path), ["a", "b"], per_class=1, size=8)
    write_image(os.path.join(root, "val", "stray", "x.png"), 8, seed=0)
    with pytest.raises(ActError, match="stray"):
        read_source("folder", root)


def test_empty_class_folder_is_an_error(tmp_path):
    root = write_image_folder(str(tmp_path), ["a", "b"], per_class=1, size=8)
    os.makedirs(os.path.join(root, "train", "c"))
    with pytest.raises(ActError, match="no images") as error:
        read_source("folder", root)
    assert os.path.join("train", "c") in str(error.value)


def train_files_read_within(root, seconds=60):
    """The train files of the folder data set at root, relative to it, read in a child process
    that is stopped after `seconds` (an exponential walk fails the test instead of hanging it)."""
    script = ("import json, os, sys; from act.datasets import read_source; root = sys.argv[1]; "
              "print(json.dumps([os.path.relpath(f, root) for f in read_source('folder', root).train.files]))")
    done = subprocess.run([sys.executable, "-c", script, root], capture_output=True, text=True, timeout=seconds)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_link_to_the_class_folder_adds_no_images(tmp_path):
    root = write_image_folder(str(tmp_path), ["a"], per_class=3, size=8)
    os.symlink(".", os.path.join(root, "train", "a", "again"))
    assert len(read_source("folder", root).train) == 3


def test_a_link_above_the_class_folder_brings_in_no_other_class(tmp_path):
    root = write_image_folder(str(tmp_path), ["a", "b"], per_class=3, size=8)
    os.symlink("..", os.path.join(root, "train", "a", "up"))
    assert train_files_read_within(root) == [f"train/{c}/00{i}.png" for c in "ab" for i in range(3)]


def test_many_link_loops_are_walked_once_each(tmp_path):
    root = write_image_folder(str(tmp_path), ["a"], per_class=2, size=8)
    nested = os.path.join(root, "train", "a", "x", "y")
    write_image(os.path.join(nested, "deep.png"), 8, seed=3)
    for folder in (os.path.join(root, "train", "a"), os.path.join(root, "train", "a", "x"), nested):
        for name in ("loop1", "loop2"):
            os.symlink(os.path.join(root, "train", "a"), os.path.join(folder, name))
    assert train_files_read_within(root, seconds=30) == ["train/a/000.png", "train/a/001.png", "train/a/x/y/deep.png"]


def test_a_folder_linked_from_outside_is_read_once(tmp_path):
    root = write_image_folder(str(tmp_path / "data"), ["a"], per_class=1, size=8)
    write_image(str(tmp_path / "elsewhere" / "far.png"), 8, seed=4)
    for name in ("link1", "link2"):
        os.symlink(tmp_path / "elsewhere", os.path.join(root, "train", "a", name))
    source = read_source("folder", root)
    assert [os.path.relpath(f, root) for f in source.train.files] == ["train/a/000.png", "train/a/link1/far.png"]


def test_a_link_to_a_sibling_class_counts_its_images_once_under_their_own_class(tmp_path):
    root = write_image_folder(str(tmp_path), ["a", "b"], per_class=2, size=8)
    os.symlink(os.path.join("..", "b"), os.path.join(root, "train", "a", "also_b"))
    source = read_source("folder", root)
    assert [os.path.relpath(f, root) for f in source.train.files] == [f"train/{c}/00{i}.png" for c in "ab" for i in range(2)]
    assert source.train.labels.tolist() == [0, 0, 1, 1]


def test_a_link_from_train_into_val_brings_no_test_image_into_training(tmp_path):
    root = write_image_folder(str(tmp_path), ["a", "b"], per_class=1, size=8)
    os.symlink(os.path.join(root, "val", "b", ""), os.path.join(root, "train", "a", "more"))
    source = read_source("folder", root)
    assert [os.path.relpath(f, root) for f in source.train.files] == ["train/a/000.png", "train/b/000.png"]
    assert [os.path.relpath(f, root) for f in source.test.files] == ["val/a/000.png", "val/b/000.png"]


def test_missing_val_folder_is_an_error(tmp_path):
    root = write_image_folder(str(tmp_path), ["a"], per_class=1, size=8, splits=("train",))
    with pytest.raises(ActError, match="val"):
        read_source("folder", root)


# ---- Food-101N ------------------------------------------------------------------------

@pytest.mark.parametrize("beside", [True, False])
def test_food101n_trains_on_imagelist_and_tests_on_food101(tmp_path, beside):
    food101 = tmp_path / "food-101" if beside else tmp_path / "Food-101N" / "food-101"
    root = write_food101n(tmp_path / "Food-101N", food101)
    source = read_source("food101n", root)
    assert source.classes == ["apple_pie", "baklava"]
    assert source.train.labels.tolist() == [1, 0, 0]
    assert source.train.files == [os.path.join(root, "images", e) for e in
                                  ("baklava/b1.jpg", "apple_pie/a1.jpg", "apple_pie/a2.jpg")]
    assert source.test.labels.tolist() == [0, 1]
    assert os.path.samefile(source.test.files[0], food101 / "images" / "apple_pie" / "1011328.jpg")
    assert (source.augment, source.image_size, source.resize) == ("web", 224, 256)


def test_food101n_missing_listed_image_is_an_error_naming_it_and_the_count(tmp_path):
    root = write_food101n(tmp_path / "Food-101N", tmp_path / "food-101")
    os.remove(os.path.join(root, "images", "apple_pie", "a1.jpg"))
    os.remove(os.path.join(root, "images", "apple_pie", "a2.jpg"))
    with pytest.raises(ActError, match=r"imagelist.tsv: 2 of 3 listed images are missing.*a1.jpg"):
        read_source("food101n", root)


def test_food101n_without_food101_is_an_error(tmp_path):
    root = write_food101n(tmp_path / "Food-101N", tmp_path / "elsewhere")
    with pytest.raises(ActError, match="food-101/meta/test.txt"):
        read_source("food101n", root)


def test_food101n_unknown_class_is_an_error_naming_the_list(tmp_path):
    root = write_food101n(tmp_path / "Food-101N", tmp_path / "food-101")
    (tmp_path / "food-101" / "meta" / "test.txt").write_text("churros/1\n")
    with pytest.raises(ActError, match="test.txt.*churros"):
        read_source("food101n", root)


# ---- Clothing1M -----------------------------------------------------------------------

def write_clothing(root, names=False):
    keys = ["images/0/00/a.jpg", "images/0/01/b.jpg", "images/1/00/c.jpg", "images/2/00/d.jpg"]
    for i, key in enumerate(keys):
        write_image(str(root / key), 8, seed=i)
    (root / "noisy_label_kv.txt").write_text(f"{keys[0]} 3\n{keys[1]} 13\n{keys[2]} 0\n{keys[3]} 5\n")
    (root / "noisy_train_key_list.txt").write_text(f"{keys[2]}\n{keys[0]}\n{keys[1]}\n")
    (root / "clean_label_kv.txt").write_text(f"{keys[3]} 7\n{keys[0]} 4\n")
    (root / "clean_test_key_list.txt").write_text(f"{keys[3]}\n")
    if names:
        (root / "category_names_eng.txt").write_text("\n".join(f"name {i}" for i in range(14)) + "\n")
    return str(root)


def test_clothing1m_trains_on_noisy_list_and_tests_on_clean_list(tmp_path):
    root = write_clothing(tmp_path)
    source = read_source("clothing1m", root)
    assert source.classes == [str(i) for i in range(14)]
    assert source.train.files == [os.path.join(root, k) for k in
                                  ("images/1/00/c.jpg", "images/0/00/a.jpg", "images/0/01/b.jpg")]
    assert source.train.labels.tolist() == [0, 3, 13]
    assert source.test.labels.tolist() == [7]
    assert source.mean == (0.6959, 0.6537, 0.6371) and source.std == (0.3113, 0.3192, 0.3214)
    assert (source.augment, source.image_size, source.resize) == ("web", 224, 256)


def test_clothing1m_reads_category_names(tmp_path):
    assert read_source("clothing1m", write_clothing(tmp_path, names=True)).classes[13] == "name 13"


def test_clothing1m_key_without_label_is_an_error_naming_key_and_file(tmp_path):
    root = write_clothing(tmp_path)
    (tmp_path / "clean_test_key_list.txt").write_text("images/1/00/c.jpg\n")
    with pytest.raises(ActError, match="clean_label_kv.txt.*images/1/00/c.jpg"):
        read_source("clothing1m", root)


def test_clothing1m_missing_image_is_an_error(tmp_path):
    root = write_clothing(tmp_path)
    os.remove(os.path.join(root, "images", "0", "01", "b.jpg"))
    with pytest.raises(ActError, match=r"noisy_train_key_list.txt: 1 of 3 .*images/0/01/b.jpg"):
        read_source("clothing1m", root)


def test_clothing1m_label_out_of_range_is_an_error(tmp_path):
    root = write_clothing(tmp_path)
    (tmp_path / "clean_label_kv.txt").write_text("images/2/00/d.jpg 14\n")
    with pytest.raises(ActError, match=r"clean_label_kv.txt.*outside \[0, 14\)"):
        read_source("clothing1m", root)


# ---- arrays ---------------------------------------------------------------------------

def test_arrays_reads_grey_npz_with_default_class_names(tmp_path):
    rs = np.random.RandomState(0)
    x = rs.randint(0, 256, size=(6, 12, 12), dtype=np.uint8)
    np.savez(tmp_path / "set.npz", x=x, y=np.array([0, 1, 2, 0, 1, 2]),
             x_test=x[:2], y_test=np.array([4, 3]))
    source = read_source("arrays", str(tmp_path))
    assert source.classes == ["0", "1", "2", "3", "4"]
    np.testing.assert_array_equal(source.train.images[..., 0], x)
    assert source.train.images.shape == (6, 12, 12, 1)
    assert (source.channels, source.image_size, source.mean, source.std) == (1, 12, (0.5,), (0.5,))
    assert source.test.labels.tolist() == [4, 3]


def test_arrays_reads_colour_npz_with_class_names(tmp_path):
    x = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    path = tmp_path / "set.npz"
    np.savez(path, x=x, y=np.array([1, 0, 1]), x_test=x, y_test=np.array([0, 0, 1]), classes=np.array(["cat", "dog"]))
    source = read_source("arrays", str(path))
    assert source.classes == ["cat", "dog"]
    assert (source.channels, source.augment, source.mean) == (3, "cifar", (0.485, 0.456, 0.406))


def test_arrays_wrong_dtype_is_an_error_naming_the_key(tmp_path):
    x = np.zeros((3, 4, 4, 3), dtype=np.float32)
    np.savez(tmp_path / "set.npz", x=x, y=np.zeros(3, dtype=int), x_test=x.astype(np.uint8), y_test=np.zeros(3, dtype=int))
    with pytest.raises(ActError, match="set.npz: x has dtype float32"):
        read_source("arrays", str(tmp_path))


def test_arrays_label_count_mismatch_is_an_error_naming_the_key(tmp_path):
    x = np.zeros((3, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "set.npz", x=x, y=np.zeros(3, dtype=int), x_test=x, y_test=np.zeros(2, dtype=int))
    with pytest.raises(ActError, match="y_test holds 2 labels for 3 images"):
        read_source("arrays", str(tmp_path))


# ---- digits ---------------------------------------------------------------------------

def test_digits_is_a_fixed_stratified_split_of_the_bundled_digits():
    source = read_source("digits", None)
    again = read_source("digits", "/ignored")
    assert len(source.train) + len(source.test) == 1797
    assert source.train.images.shape[1:] == (8, 8, 1) and source.train.images.dtype == np.uint8
    assert source.train.images.max() == 255
    assert (source.augment, source.image_size, source.channels, source.mean) == ("digits", 8, 1, (0.5,))
    assert source.classes == [str(i) for i in range(10)]
    train_counts, test_counts = np.bincount(source.train.labels), np.bincount(source.test.labels)
    totals = train_counts + test_counts
    assert (test_counts > 0).all()
    np.testing.assert_array_equal(train_counts, (0.8 * totals).astype(int))
    np.testing.assert_array_equal(again.train.images, source.train.images)
    np.testing.assert_array_equal(again.test.labels, source.test.labels)


# ---- image size -----------------------------------------------------------------------

def test_image_size_override_scales_the_resize_of_file_sources(tmp_path):
    root = write_food101n(tmp_path / "Food-101N", tmp_path / "food-101")
    source = read_source("food101n", root, image_size=112)
    assert (source.image_size, source.resize) == (112, 128)


def test_an_array_source_is_used_at_its_own_size_and_another_is_refused(tmp_path):
    root = write_cifar(str(tmp_path), "cifar10n", n_train=5, n_test=5, seed=0)
    assert read_source("cifar10n", root, image_size=32).image_size == 32
    with pytest.raises(ActError, match=r"data.image_size=64: cifar10n holds 32x32 arrays.*set data.image_size=0"):
        read_source("cifar10n", root, image_size=64)


# ---- abuse: files that would run code, or make the run allocate or crash (issue 14) ------

class RunsACommand:
    """Unpickling this runs `touch <marker>`: what a crafted CIFAR batch could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_cifar_batch_that_would_run_code_is_refused_unexecuted(tmp_path):
    root = write_cifar(str(tmp_path / "data"), "cifar10n", n_train=10, n_test=5)
    batch = cifar_file(root, "cifar10n", "data_batch_2")
    marker = tmp_path / "ran"
    write_pickle(batch, {"data": RunsACommand(marker), "labels": [0, 1]})
    with pytest.raises(ActError, match=r"data_batch_2: refused: the pickle calls posix.system.*nothing in it was run"):
        read_source("cifar10n", root)
    assert not marker.exists()


def test_a_cifar_batch_of_python_objects_is_refused(tmp_path):
    root = write_cifar(str(tmp_path), "cifar10n", n_train=10, n_test=5)
    write_pickle(cifar_file(root, "cifar10n", "test_batch"), {"data": np.array([1, "a"], dtype=object), "labels": [0]})
    with pytest.raises(ActError, match="test_batch: refused: the pickle builds an array of Python objects"):
        read_source("cifar10n", root)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batches_pickled_by_newer_numpy_and_python_still_read(tmp_path, protocol):
    root = write_cifar(str(tmp_path), "cifar10n", n_train=10, n_test=4)
    data = np.arange(4 * 3072, dtype=np.uint64).astype(np.uint8).reshape(4, 3072)
    with open(cifar_file(root, "cifar10n", "test_batch"), "wb") as f:
        pickle.dump({"data": data, "labels": [np.int64(3), 1, 2, 0]}, f, protocol=protocol)
    source = read_source("cifar10n", root)
    assert source.test.labels.tolist() == [3, 1, 2, 0]
    np.testing.assert_array_equal(source.test.images, data.reshape(4, 3, 32, 32).transpose(0, 2, 3, 1))


def write_npz(path, x, y, x_test=None, y_test=None):
    np.savez(path, x=x, y=y, x_test=x if x_test is None else x_test, y_test=y if y_test is None else y_test)
    return str(path)


@pytest.mark.parametrize("channels", [2, 4])
def test_arrays_of_other_than_one_or_three_channels_are_refused_at_read_time(tmp_path, channels):
    path = write_npz(tmp_path / "set.npz", np.zeros((4, 8, 8, channels), np.uint8), np.array([0, 1, 0, 1]))
    with pytest.raises(ActError, match=rf"set.npz: x has {channels} channels; arrays holds grey \(1\) or RGB \(3\)"):
        read_source("arrays", path)


def test_a_stray_label_in_arrays_is_refused_before_anything_is_built(tmp_path):
    y = np.array([0, 1, 2, 1_000_000])
    path = write_npz(tmp_path / "set.npz", np.zeros((4, 8, 8, 3), np.uint8), y, y_test=np.array([0, 1, 2, 0]))
    with pytest.raises(ActError, match=r"set.npz: the labels reach 1000000 but only 4 of the classes"):
        read_source("arrays", path)


def test_a_label_beyond_the_named_classes_is_refused(tmp_path):
    path = tmp_path / "set.npz"
    np.savez(path, x=np.zeros((2, 8, 8, 3), np.uint8), y=np.array([0, 10**6]), x_test=np.zeros((1, 8, 8, 3), np.uint8),
             y_test=np.array([1]), classes=np.array(["a", "b"]))
    with pytest.raises(ActError, match=r"set.npz \(y\): 1 labels are outside \[0, 2\)"):
        read_source("arrays", str(path))
