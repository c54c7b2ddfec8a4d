"""ImageFolder readers (`root/train/<class>/<image>`, `root/val/<class>/<image>`): Web-Aircraft,
Web-Bird, Web-Car and any `folder` data set; plus the checks every file-list reader shares."""
from __future__ import annotations

import os

import numpy as np

from act.datasets.base import Source, Split
from act.errors import ActError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
LAYOUT = "root/train/<class>/<image> and root/val/<class>/<image>"


def require_files(files: list[str], where: str) -> None:
    """Raise an ActError when images listed by `where` are missing on disk.

    One directory listing per folder instead of one stat per file: Clothing1M lists a
    million images in a thousand folders.
    """
    listings: dict[str, set[str]] = {}
    missing = [path for path in files if os.path.basename(path) not in _listing(os.path.dirname(path), listings)]
    if missing:
        raise ActError(f"{where}: {len(missing)} of {len(files)} listed images are missing, the first: {missing[0]}")


def _listing(folder: str, cache: dict[str, set[str]]) -> set[str]:
    if folder not in cache:
        try:
            cache[folder] = set(os.listdir(folder or "."))
        except OSError:
            cache[folder] = set()
    return cache[folder]


def list_class_images(split_dir: str, class_name: str, class_dirs: set[str]) -> list[str]:
    """Every image under split_dir/class_name (recursively), sorted by path.

    Directory links are followed, since data sets are often assembled from links to other
    disks, but each real directory is read once: a second link to the same folder adds no
    images, and a link to the class folder or above it (a loop, which would also bring in the
    other classes) is not entered, so the walk stays linear however many loops there are. Nor is
    a link into another class folder of the data set (`class_dirs`: the real paths of every
    class folder of both splits): its images are read there, under their own class, and a link
    from train into val would put test images in training. Subfolders are walked in sorted
    order, so the path kept for a folder reached twice is the same on every read."""
    class_dir = os.path.join(split_dir, class_name)
    own = os.path.realpath(class_dir)
    below_class = os.path.join(own, "")
    others = [os.path.join(c, "") for c in class_dirs if c != own]
    found, seen = [], set()
    for dirpath, dirnames, names in os.walk(class_dir, followlinks=True):
        real = os.path.realpath(dirpath)
        below = os.path.join(real, "")
        if (real in seen or (seen and below_class.startswith(below))
                or (not below.startswith(below_class) and any(below.startswith(o) for o in others))):
            dirnames.clear()
            continue
        seen.add(real)
        dirnames.sort()
        found.extend(os.path.join(dirpath, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS))
    if not found:
        raise ActError(f"{class_dir}: class folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return sorted(found)


def class_folders(split_dir: str) -> list[str]:
    """Sorted names of the class folders of one split (hidden folders skipped)."""
    if not os.path.isdir(split_dir):
        raise ActError(f"{split_dir}: folder not found; expected {LAYOUT}")
    names = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))
    if not names:
        raise ActError(f"{split_dir}: no class folders found; expected {LAYOUT}")
    return names


def read_split(split_dir: str, classes: list[str], class_dirs: set[str]) -> Split:
    """One split of an ImageFolder tree, labelled by the position of its folder in `classes`
    (`class_dirs`: list_class_images)."""
    index = {name: i for i, name in enumerate(classes)}
    files, labels = [], []
    for name in class_folders(split_dir):
        if name not in index:
            raise ActError(f"{os.path.join(split_dir, name)}: class {name!r} is not among the train classes")
        images = list_class_images(split_dir, name, class_dirs)
        files.extend(images)
        labels.extend([index[name]] * len(images))
    return Split(labels=np.array(labels, dtype=np.int64), files=files)


def read_image_folder(root: str | None, name: str, image_size: int, resize: int) -> Source:
    """An ImageFolder tree: classes are the sorted folder names of train/."""
    folders = image_folder_classes(root, name)
    train_dir, val_dir = os.path.join(root, "train"), os.path.join(root, "val")
    classes = folders["train"]
    class_dirs = {os.path.realpath(os.path.join(root, split, c)) for split, names in folders.items() for c in names}
    return Source(
        name=name, train=read_split(train_dir, classes, class_dirs), test=read_split(val_dir, classes, class_dirs),
        classes=classes, image_size=image_size, resize=resize)


def image_folder_classes(root: str | None, name: str) -> dict[str, list[str]]:
    """The class folders of root/train and root/val; one line where `root` is no ImageFolder tree
    of data set `name`. Lists two folders and reads no image: a run's preflight calls it too."""
    if not root or not os.path.isdir(root):
        raise ActError(f"data.root={root}: folder not found; {name} expects {LAYOUT}")
    return {split: class_folders(os.path.join(root, split)) for split in ("train", "val")}


def require_files_of(root: str | None, name: str, files: tuple[str, ...], expected: str) -> None:
    """One line where `root` is no folder, or lacks one of `files` (paths below it), as data set
    `name` lays them out (`expected`); reads none of them."""
    if not root or not os.path.isdir(root):
        raise ActError(f"data.root={root}: folder not found; {name} expects {expected}")
    for file in files:
        if not os.path.isfile(os.path.join(root, file)):
            raise missing(os.path.join(root, file), expected)


def missing(path: str, expected: str) -> ActError:
    return ActError(f"{path}: file not found; expected {expected}")


def read_lines(path: str, expected: str) -> list[str]:
    """The non-blank lines of a text file, stripped; a missing file names the layout `expected`."""
    try:
        with open(path, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError as exc:
        raise missing(path, expected) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ActError(f"{path}: cannot read it as a text file: {exc}") from exc
