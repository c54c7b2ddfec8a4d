"""Clothing1M: a million noisily labelled training images and a clean test list.

The training labels are the data set's own noise (its true labels are mostly unknown), so
they are returned as `train.labels` like any other reader's.
"""
from __future__ import annotations

import os

import numpy as np

from act.datasets.base import Source, Split, check_labels
from act.datasets.folder import read_lines, require_files, require_files_of
from act.errors import ActError

MEAN = (0.6959, 0.6537, 0.6371)
STD = (0.3113, 0.3192, 0.3214)
NUM_CLASSES = 14
LAYOUT = ("root/noisy_label_kv.txt, root/noisy_train_key_list.txt, root/clean_label_kv.txt, "
          "root/clean_test_key_list.txt (optionally root/category_names_eng.txt) and the images at root/<key>")
LISTS = ("noisy_label_kv.txt", "noisy_train_key_list.txt", "clean_label_kv.txt", "clean_test_key_list.txt")


def read_clothing1m(root: str | None) -> Source:
    """Train: noisy_train_key_list.txt labelled by noisy_label_kv.txt; test: clean_test_key_list.txt by clean_label_kv.txt."""
    locate_clothing1m(root)
    names_path = os.path.join(root, "category_names_eng.txt")
    classes = read_lines(names_path, LAYOUT) if os.path.isfile(names_path) else [str(i) for i in range(NUM_CLASSES)]
    train = read_keyed_split(root, "noisy_train_key_list.txt", "noisy_label_kv.txt", len(classes))
    test = read_keyed_split(root, "clean_test_key_list.txt", "clean_label_kv.txt", len(classes))
    return Source(name="clothing1m", train=train, test=test, classes=classes, 
                  image_size=224, resize=256, mean=MEAN, std=STD)


def locate_clothing1m(root: str | None) -> None:
    """Refuse a data.root that is no folder or lacks one of Clothing1M's lists; reads none of them."""
    require_files_of(root, "clothing1m", LISTS, LAYOUT)


def read_label_kv(path: str) -> dict[str, int]:
    """A `<key> <label>` file as a dict."""
    labels = {}
    for line in read_lines(path, LAYOUT):
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise ActError(f"{path}: line {line!r} is not '<image key> <integer label>'")
        labels[parts[0]] = int(parts[1])
    return labels


def read_keyed_split(root: str, list_name: str, kv_name: str, num_classes: int) -> Split:
    """The keys of list_name, in order, labelled by kv_name; images at root/<key>."""
    list_path, kv_path = os.path.join(root, list_name), os.path.join(root, kv_name)
    labelled = read_label_kv(kv_path)
    keys = read_lines(list_path, LAYOUT)
    if not keys:
        raise ActError(f"{list_path}: lists no images")
    unlabelled = [key for key in keys if key not in labelled]
    if unlabelled:
        raise ActError(f"{kv_path}: has no label for key {unlabelled[0]} of {list_path} "
                       f"({len(unlabelled)} keys unlabelled)")
    labels = np.array([labelled[key] for key in keys], dtype=np.int64)
    check_labels(labels, num_classes, kv_path)
    files = [os.path.join(root, key) for key in keys]
    require_files(files, list_path)
    return Split(labels=labels, files=files)
