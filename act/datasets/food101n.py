"""Food-101N: noisy web training images, evaluated on Food-101's clean test split."""
from __future__ import annotations

import os

import numpy as np

from act.datasets.base import Source, Split
from act.datasets.folder import read_lines, require_files, require_files_of
from act.errors import ActError

LAYOUT = ("root/meta/classes.txt, root/meta/imagelist.tsv and root/images/<class>/<file>, "
          "with Food-101 (food-101/meta/test.txt, food-101/images/) under root or beside it")
LISTS = (os.path.join("meta", "classes.txt"), os.path.join("meta", "imagelist.tsv"))


def read_food101n(root: str | None) -> Source:
    """Train: every image of meta/imagelist.tsv; test: Food-101's meta/test.txt; classes: meta/classes.txt."""
    food101 = locate_food101n(root)
    classes_path = os.path.join(root, "meta", "classes.txt")
    classes = without_header(read_lines(classes_path, LAYOUT), "class_name")
    if not classes:
        raise ActError(f"{classes_path}: lists no classes")
    train = read_list(os.path.join(root, "meta", "imagelist.tsv"), "class_name/key",
                      os.path.join(root, "images"), "", classes, classes_path)
    test = read_list(os.path.join(food101, "meta", "test.txt"), None,
                     os.path.join(food101, "images"), ".jpg", classes, classes_path)
    return Source(name="food101n", train=train, test=test, classes=classes,
                  image_size=224, resize=256)


def locate_food101n(root: str | None) -> str:
    """The Food-101 folder of Food-101N at `root`, once root holds Food-101N's lists; reads none of them."""
    require_files_of(root, "food101n", LISTS, LAYOUT)
    return find_food101(root)


def without_header(lines: list[str], header: str | None) -> list[str]:
    return lines[1:] if lines and lines[0] == header else lines


def find_food101(root: str) -> str:
    """The Food-101 folder: root/food-101 or root/../food-101."""
    candidates = [os.path.join(root, "food-101"), os.path.join(os.path.dirname(os.path.abspath(root)), "food-101")]
    for folder in candidates:
        if os.path.isfile(os.path.join(folder, "meta", "test.txt")):
            return folder
    raise ActError(f"data.root={root}: no food-101/meta/test.txt in {' or '.join(candidates)}; food101n is "
                   f"evaluated on Food-101's test split and expects {LAYOUT}")


def read_list(list_path: str, header: str | None, image_dir: str, suffix: str,
              classes: list[str], classes_path: str) -> Split:
    """A list of `<class>/<name>` entries: images at image_dir/<entry><suffix>, labelled by class."""
    index = {name: i for i, name in enumerate(classes)}
    entries = without_header(read_lines(list_path, LAYOUT), header)
    if not entries:
        raise ActError(f"{list_path}: lists no images")
    labels = []
    for entry in entries:
        class_name = entry.split("/", 1)[0]
        if "/" not in entry or class_name not in index:
            raise ActError(f"{list_path}: entry {entry!r} does not start with a class of {classes_path}")
        labels.append(index[class_name])
    files = [os.path.join(image_dir, entry + suffix) for entry in entries]
    require_files(files, list_path)
    return Split(labels=np.array(labels, dtype=np.int64), files=files)
