"""Writers of tiny data sets in the real on-disk formats, for tests that read them back.

`write_cifar` writes the CIFAR python pickle format, `write_image_folder` an ImageFolder tree
of real PNG files, `write_food101n` a Food-101N tree with its Food-101 test split; each returns
the root to pass as data.root.
"""
from __future__ import annotations

import os
import pickle
import tarfile

import numpy as np
from PIL import Image

# variant -> (folder, archive, train files, test file, meta file, names key, labels key, classes)
CIFAR = {
    "cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz", [f"data_batch_{i}" for i in range(1, 6)],
                "test_batch", "batches.meta", "label_names", "labels", 10),
    "cifar100": ("cifar-100-python", "cifar-100-python.tar.gz", ["train"], "test", "meta",
                 "fine_label_names", "fine_labels", 100),
}
CIFAR_VARIANTS = {"cifar10": "cifar10", "cifar10n": "cifar10", "cifar100": "cifar100",
                  "cifar100n": "cifar100", "cifar80n": "cifar100"}


def write_pickle(path: str, obj: dict, bytes_keys: bool = False) -> None:
    """A CIFAR-style pickle; bytes_keys mimics files pickled by Python 2."""
    if bytes_keys:
        obj = {key.encode(): value for key, value in obj.items()}
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar(root: str, variant: str, n_train: int, n_test: int, seed: int = 0,
                bytes_keys: bool = False) -> str:
    """root/<cifar folder>/ with random images and labels (train spread over the batch files).

    variant: cifar10 / cifar100 (or a data set name: cifar10n, cifar100n, cifar80n).
    """
    folder, _, train_files, test_file, meta_file, names_key, labels_key, classes = CIFAR[CIFAR_VARIANTS[variant]]
    rs = np.random.RandomState(seed)
    path = os.path.join(root, folder)
    os.makedirs(path, exist_ok=True)
    write_pickle(os.path.join(path, meta_file), {names_key: [f"class_{i}" for i in range(classes)]}, bytes_keys)
    counts = [len(part) for part in np.array_split(np.arange(n_train), len(train_files))] + [n_test]
    for name, count in zip(train_files + [test_file], counts):
        batch = {"data": rs.randint(0, 256, size=(count, 3072), dtype=np.uint8),
                 labels_key: rs.randint(0, classes, size=count).tolist()}
        write_pickle(os.path.join(path, name), batch, bytes_keys)
    return root


def archive_cifar(root: str, variant: str, dest: str) -> str:
    """Pack the CIFAR folder under root into its usual .tar.gz inside dest; returns the archive path."""
    folder, archive = CIFAR[CIFAR_VARIANTS[variant]][:2]
    os.makedirs(dest, exist_ok=True)
    path = os.path.join(dest, archive)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(os.path.join(root, folder), arcname=folder)
    return path


def write_image(path: str, size: int, seed: int) -> str:
    """One small RGB image, encoded by its extension (PNG, JPEG, ...)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.RandomState(seed).randint(0, 256, size=(size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_image_folder(root: str, classes: list[str], per_class: int, size: int,
                       splits: tuple[str, ...] = ("train", "val")) -> str:
    """root/<split>/<class>/<i>.png, per_class images of size x size per class and split."""
    for s, split in enumerate(splits):
        for c, name in enumerate(classes):
            for i in range(per_class):
                write_image(os.path.join(root, split, name, f"{i:03d}.png"), size, seed=(s * 1000 + c) * 1000 + i)
    return root


def write_food101n(root, food101_at, classes=("apple_pie", "baklava"),
                   entries=("baklava/b1.jpg", "apple_pie/a1.jpg", "apple_pie/a2.jpg"),
                   test=("apple_pie/1011328", "baklava/200"), size: int = 8) -> str:
    """A Food-101N tree (meta/classes.txt, meta/imagelist.tsv, images/) at root and a Food-101
    test split (meta/test.txt, images/<entry>.jpg) at food101_at; returns root."""
    os.makedirs(os.path.join(root, "meta"))
    with open(os.path.join(root, "meta", "classes.txt"), "w") as f:
        f.write("class_name\n" + "\n".join(classes) + "\n")
    with open(os.path.join(root, "meta", "imagelist.tsv"), "w") as f:
        f.write("class_name/key\n" + "\n".join(entries) + "\n")
    for i, entry in enumerate(entries):
        write_image(os.path.join(root, "images", entry), size, seed=i)
    os.makedirs(os.path.join(food101_at, "meta"))
    with open(os.path.join(food101_at, "meta", "test.txt"), "w") as f:
        f.write("\n".join(test) + "\n")
    for i, entry in enumerate(test):
        write_image(os.path.join(food101_at, "images", f"{entry}.jpg"), size, seed=10 + i)
    return str(root)


def array_source(n=50, size=32, channels=3, augment="cifar", seed=0, n_test=20):
    """An in-memory array Source of random pixels and 5 classes (mean 0.5, std 0.25 per channel)."""
    from act.datasets.base import Source, Split

    rs = np.random.RandomState(seed)
    images = rs.randint(0, 256, (n, size, size, channels), dtype=np.uint8)
    labels = rs.randint(0, 5, n)
    return Source(name="t", train=Split(labels=labels, images=images),
                  test=Split(labels=labels[:n_test], images=images[:n_test]),
                  classes=[str(i) for i in range(5)], augment=augment, image_size=size, channels=channels,
                  mean=(0.5,) * channels, std=(0.25,) * channels)
