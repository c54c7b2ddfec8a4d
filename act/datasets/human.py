"""CIFAR-N's human labels: the re-annotations of the CIFAR training sets by Wei et al. (ICLR 2022,
"Learning with Noisy Labels Revisited: A Study Using Real-World Human Annotations"), as their authors
publish them: CIFAR-10_human.pt and CIFAR-100_human.pt (ACT_SPEC.md "Human label noise").

Each file is a torch.save zip of one pickled dict: label-set name -> one label per CIFAR training
image, in the order of the CIFAR python batches. Its pickle is read by the restricted unpickler that
reads CIFAR batches (act/datasets/cifar.py), which allows only what numpy arrays need: nothing in the
file is run, and torch is not imported. A file is checked before use: as many labels as training
images, its `clean_label` equal to the CIFAR training labels in their order, every label a class.

The ACT paper's CIFAR100N/CIFAR80N (and our data.name values cifar10n, cifar100n, cifar80n) carry
synthetic noise; `data.noise.type=human` takes a label set of these files instead, on the same images.
"""
from __future__ import annotations

import io
import os
import zipfile
from dataclasses import replace

import numpy as np

from act.datasets.base import Source, check_labels
from act.datasets.cifar import BatchUnpickler, unpickle
from act.errors import ActError

TRUE_KEY = "clean_label"  # the CIFAR label of each image, in the file's order: checked against the data set's
# data.name -> the published file's name, the data set's name in Wei et al. and its label sets
FILES = {"cifar10n": "CIFAR-10_human.pt", "cifar100n": "CIFAR-100_human.pt"}
TITLES = {"cifar10n": "CIFAR-10N", "cifar100n": "CIFAR-100N"}
LABEL_SETS = {
    "cifar10n": ("clean_label", "aggre_label", "worse_label", "random_label1", "random_label2", "random_label3"),
    "cifar100n": ("clean_label", "noisy_label", "clean_coarse_label", "noisy_coarse_label"),
}
# The authors' short names (their main.py's --noise_type) and the one word a run's name uses.
SHORT_NAMES = {"clean": "clean_label", "aggre": "aggre_label", "worst": "worse_label", "rand1": "random_label1",
               "rand2": "random_label2", "rand3": "random_label3", "clean100": "clean_label",
               "noisy100": "noisy_label"}
TAGS = {"clean_label": "clean", "aggre_label": "aggre", "worse_label": "worst", "random_label1": "rand1",
        "random_label2": "rand2", "random_label3": "rand3", "noisy_label": "noisy",
        "clean_coarse_label": "clean-coarse", "noisy_coarse_label": "noisy-coarse"}
COARSE_TRUE_KEY = "clean_coarse_label"
# CIFAR-100's 20 superclasses in the order of its meta file's coarse_label_names (the coarse label sets' classes).
COARSE_CLASSES = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables", "household_electrical_devices",
    "household_furniture", "insects", "large_carnivores", "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes", "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates",
    "people", "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2")


def label_key(name: str, labels: str | None) -> str:
    """The key of data set `name`'s label file that data.noise.labels names (a key, or the authors'
    short name: aggre, worst, rand1, ...); one line listing the choices otherwise."""
    if name not in LABEL_SETS:
        raise ActError(f"data.noise.type=human reads CIFAR-N's human labels, which exist for "
                       f"{' and '.join(LABEL_SETS)} only; data.name={name} has none")
    key = SHORT_NAMES.get(labels or "", labels)
    if key not in LABEL_SETS[name]:
        raise ActError(f"data.noise.labels={labels!r} is not a label set of {TITLES[name]}'s {FILES[name]}; "
                       f"choose one of {', '.join(LABEL_SETS[name])}")
    return key


def is_coarse(key: str | None) -> bool:
    """Whether label set `key` names CIFAR-100's 20 superclasses rather than its 100 classes."""
    return bool(key) and "coarse" in key


def label_file(path: str | None, name: str) -> str:
    """data.noise.file: the label file itself, or a folder holding it under its published name."""
    if not path:
        raise ActError(f"data.noise.type=human needs data.noise.file: Wei et al.'s {FILES[name]}, or the folder "
                       f"holding it")
    if os.path.isdir(path):
        path = os.path.join(path, FILES[name])
    if not os.path.isfile(path):
        raise ActError(f"data.noise.file={path}: no such file; give {FILES[name]} (Wei et al.'s {TITLES[name]} "
                       f"labels) or the folder holding it")
    return path


class LabelUnpickler(BatchUnpickler):
    """BatchUnpickler, naming torch tensors as what a published label file never holds (torch.save of
    numpy arrays); they are refused, unbuilt, as any other global a CIFAR file never needs."""

    def find_class(self, module: str, name: str):
        if module.partition(".")[0] == "torch":
            raise ActError(f"refused: the pickle builds torch objects ({module}.{name}); the published CIFAR-N "
                           f"files hold numpy arrays, and nothing in it was run")
        return super().find_class(module, name)


def read_label_file(path: str) -> dict:
    """The dict a torch.save zip holds, unpickled without running anything in it."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.rpartition("/")[2] == "data.pkl"]
            if len(pickles) != 1:
                raise ActError(f"{path}: holds {len(pickles)} data.pkl records, a torch.save file one")
            data = archive.read(pickles[0])
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ActError(f"{path}: not a torch.save file (a zip holding data.pkl): {exc}; give the authors' "
                       f"CIFAR-10_human.pt or CIFAR-100_human.pt") from None
    return unpickle(data, path, LabelUnpickler)


def labels_of(table: dict, key: str, size: int, path: str) -> np.ndarray:
    """table[key] as one integer label per training image, or one line naming what is wrong."""
    if key not in table:
        raise ActError(f"{path}: has no {key!r} labels (it holds {', '.join(sorted(table))}): a file of the other "
                       f"CIFAR-N data set?")
    values = np.asarray(table[key])
    if values.ndim != 1 or (values.size and values.dtype.kind not in "iu"):
        raise ActError(f"{path}: {key!r} is not a list of integer labels (shape {values.shape}, {values.dtype})")
    if len(values) != size:
        raise ActError(f"{path}: {key!r} holds {len(values)} labels but the training set has {size} images: "
                       f"a file of another data set?")
    return values.astype(np.int64)


def check_order(clean: np.ndarray, true: np.ndarray, path: str, name: str) -> None:
    """The file's clean labels are the data set's, image for image: the same images in the same order."""
    differ = np.flatnonzero(clean != true)
    if len(differ):
        raise ActError(f"{path}: its {TRUE_KEY} differs from the {TITLES[name]} training labels at {len(differ)} of "
                       f"{len(true)} images (the first at {int(differ[0])}): a file for another ordering (the "
                       f"TensorFlow .npy?) or data set; give {FILES[name]} with the CIFAR python batches")


def coarse_map(fine: np.ndarray, coarse: np.ndarray, path: str) -> np.ndarray:
    """fine class -> superclass, as the file's clean labels pair them; each fine class in one superclass."""
    table = np.full(int(fine.max(initial=-1)) + 1, -1, dtype=np.int64)
    table[fine] = coarse
    if np.any(table[fine] != coarse):
        raise ActError(f"{path}: {COARSE_TRUE_KEY} puts one fine class in two superclasses; the file is damaged")
    return table


def to_coarse(source: Source, table: dict, size: int, path: str) -> Source:
    """`source` with CIFAR-100's 20 superclasses as its classes, train and test labels mapped to them."""
    coarse = labels_of(table, COARSE_TRUE_KEY, size, path)
    check_labels(coarse, len(COARSE_CLASSES), f"{path}: {COARSE_TRUE_KEY}")
    mapping = coarse_map(source.train.labels, coarse, path)
    test = source.test.labels
    if len(test) and (test.max() >= len(mapping) or np.any(mapping[test] < 0)):
        raise ActError(f"{path}: the test set holds a class no training image has, which {COARSE_TRUE_KEY} "
                       f"gives no superclass")
    return replace(source, train=replace(source.train, labels=coarse), test=replace(source.test, labels=mapping[test]),
                   classes=list(COARSE_CLASSES), label_space=0)


def with_human_labels(source: Source, name: str, path: str | None, labels: str) -> Source:
    """`source` (CIFAR-10 or CIFAR-100 as read, its own labels) whose training split carries the human
    label set `labels` of the file at `path` as its noisy labels; the test set stays clean."""
    path = label_file(path, name)
    key = label_key(name, labels)
    table = read_label_file(path)
    size = len(source.train)
    check_order(labels_of(table, TRUE_KEY, size, path), source.train.labels, path, name)
    if is_coarse(key):
        source = to_coarse(source, table, size, path)
    noisy = labels_of(table, key, size, path)
    check_labels(noisy, source.num_classes, f"{path}: {key}")
    return replace(source, train=replace(source.train, noisy=noisy))
