"""CIFAR-10 and CIFAR-100 from the CIFAR python pickle format: the images of the ACT paper's
CIFAR-100N / CIFAR-80N (synthetic noise, data.name cifar100n / cifar80n; cifar10n: CIFAR-10) and of
Wei et al.'s CIFAR-10N / CIFAR-100N (human labels, act/datasets/human.py).

`root` may be the folder holding `cifar-10-batches-py/` (or `cifar-100-python/`), that folder
itself, the `.tar.gz` archive, or a folder holding the archive. Archive members are read
straight from the tarfile, never extracted to disk.
"""
from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass

import numpy as np

from act.datasets.base import Source, Split, check_labels
from act.errors import ActError

PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class Layout:
    folder: str
    archive: str
    train: tuple[str, ...]
    test: str
    meta: str
    names_key: str
    labels_key: str


LAYOUTS = {
    "cifar10n": Layout("cifar-10-batches-py", "cifar-10-python.tar.gz",
                       tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
                       "batches.meta", "label_names", "labels"),
    "cifar100n": Layout("cifar-100-python", "cifar-100-python.tar.gz", ("train",), "test",
                        "meta", "fine_label_names", "fine_labels"),
}


def read_cifar(root: str | None, name: str) -> Source:
    """CIFAR-10 (name "cifar10n") or CIFAR-100 ("cifar100n"): the clean labels the files ship with."""
    layout = LAYOUTS[name]
    members = open_members(root, layout)
    meta = members.load(layout.meta)
    classes = [decode(n) for n in field(meta, layout.names_key, members.where(layout.meta))]
    parts = [read_batch(members, f, layout.labels_key, len(classes)) for f in layout.train]
    train = Split(labels=np.concatenate([p.labels for p in parts]),
                  images=np.concatenate([p.images for p in parts]))
    test = read_batch(members, layout.test, layout.labels_key, len(classes))
    return Source(name=name, train=train, test=test, classes=classes, image_size=32)


def read_cifar80n(root: str | None, openset_ratio: float) -> Source:
    """CIFAR-100 with its last classes as open-set noise (ACT_SPEC.md "Noisy datasets").

    The model predicts the first K = int(100 * (1 - openset_ratio)) fine classes; the train
    split keeps all images with their true fine labels (those >= K are open-set), the test
    split keeps only the closed-set images.
    """
    full = read_cifar(root, "cifar100n")
    closed = int(full.num_classes * (1 - openset_ratio))
    assert 0.0 < openset_ratio < 1.0 and closed >= 2, "validated by act/config.py"
    keep = full.test.labels < closed
    test = Split(labels=full.test.labels[keep], images=full.test.images[keep])
    return Source(name="cifar80n", train=full.train, test=test, classes=full.classes[:closed],
                  label_space=full.num_classes, image_size=32)


class Members:
    """Reads the files of one CIFAR folder, either from disk or from inside a tar archive."""

    def __init__(self, folder: str | None = None, archive: str | None = None, prefix: str = "") -> None:
        self.folder, self.archive, self.prefix = folder, archive, prefix
        self._contents = read_archive(archive, prefix) if archive else None

    def where(self, name: str) -> str:
        """The place to name in errors about file `name`."""
        return f"{self.archive}:{self.prefix}/{name}" if self.archive else os.path.join(self.folder, name)

    def load(self, name: str) -> dict:
        """File `name` unpickled, as a dict with str keys."""
        return unpickle(self.read(name), self.where(name))

    def read(self, name: str) -> bytes:
        if self._contents is not None:
            if name not in self._contents:
                raise ActError(f"{self.archive}: archive has no member {self.prefix}/{name}")
            return self._contents[name]
        try:
            with open(self.where(name), "rb") as f:
                return f.read()
        except OSError as exc:
            raise ActError(f"{self.where(name)}: cannot read CIFAR file: {exc}") from exc


def read_archive(archive: str, prefix: str) -> dict[str, bytes]:
    """The files under prefix/ of a tar archive, read in one pass (a .tar.gz cannot seek back cheaply)."""
    contents = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                folder, _, name = member.name.removeprefix("./").rpartition("/")
                if member.isfile() and folder == prefix:
                    contents[name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ActError(f"{archive}: not a readable tar archive (truncated or corrupt?): {exc}") from exc
    return contents


def open_members(root: str | None, layout: Layout) -> Members:
    """The CIFAR files of `root`, in any of its accepted forms."""
    folder, archive = locate(root, layout)
    return Members(folder=folder) if folder else Members(archive=archive, prefix=layout.folder)


def locate(root: str | None, layout: Layout) -> tuple[str | None, str | None]:
    """(the CIFAR folder, None) or (None, the archive) that `root` names, found without reading either."""
    expected = (f"data.root may be the folder holding either, the {layout.folder}/ folder itself, "
                f"or the {layout.archive} archive")
    if root and os.path.isfile(root):
        return None, root
    if root and os.path.isdir(root):
        is_folder = os.path.basename(os.path.normpath(root)) == layout.folder
        if is_folder or os.path.isfile(os.path.join(root, layout.meta)):
            return root, None
        if os.path.isdir(os.path.join(root, layout.folder)):
            return os.path.join(root, layout.folder), None
        if os.path.isfile(os.path.join(root, layout.archive)):
            return None, os.path.join(root, layout.archive)
    raise ActError(f"data.root={root}: no {layout.folder}/ folder or {layout.archive} found; {expected}")


def locate_cifar(root: str | None, name: str) -> None:
    """Refuse a data.root holding no CIFAR folder or archive of data set `name` (cifar10n, cifar100n,
    cifar80n), as reading it would, without reading it."""
    locate(root, LAYOUTS["cifar100n" if name == "cifar80n" else name])


def unpickle(data: bytes, where: str, reader: type[pickle.Unpickler] | None = None) -> dict:
    """A CIFAR pickle as a dict with str keys (Python 2 pickles have bytes keys).

    Read by `BatchUnpickler` (or `reader`, one of its kind): a pickle may name any callable to run,
    so only the numpy constructors a dict of arrays needs are allowed; anything else is refused
    unexecuted. CIFAR-N's label files are read so too (act/datasets/human.py)."""
    try:
        obj = (reader or BatchUnpickler)(io.BytesIO(data), encoding="latin1").load()
    except ActError as exc:
        raise ActError(f"{where}: {exc}") from None
    except Exception as exc:  # any other unpickling failure means a damaged file
        raise ActError(f"{where}: not a readable CIFAR pickle (truncated or corrupt?): {exc!r}") from exc
    if not isinstance(obj, dict):
        raise ActError(f"{where}: holds a {type(obj).__name__}, expected a CIFAR batch dict")
    return {decode(k): v for k, v in obj.items()}


def plain_dtype(*args) -> np.dtype:
    """numpy.dtype, except dtypes holding Python objects (their bytes would be read as pointers)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise ActError("refused: the pickle builds an array of Python objects; a CIFAR batch holds numbers")
    return dtype


def plain_scalar(dtype: np.dtype, data: bytes = b""):
    return SCALAR(plain_dtype(dtype), data)


def latin1_bytes(text: str, encoding: str = "utf-8") -> bytes:
    """_codecs.encode as protocol-2 pickles of bytes use it, limited to the codecs they name."""
    if encoding not in ("latin1", "latin-1"):
        raise ActError(f"refused: the pickle encodes text with codec {encoding!r}")
    return text.encode(encoding)


RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]
FROMBUFFER = np.zeros(0).__reduce_ex__(5)[0]
SCALAR = np.int64(0).__reduce__()[0]
# (module, name) a CIFAR batch's pickle may name, for numpy 1 (numpy.core) and 2 (numpy._core).
ALLOWED = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): plain_dtype, ("_codecs", "encode"): latin1_bytes}
for core in ("numpy.core", "numpy._core"):
    ALLOWED.update({(f"{core}.multiarray", "_reconstruct"): RECONSTRUCT, (f"{core}.multiarray", "scalar"): plain_scalar,
                    (f"{core}.numeric", "_frombuffer"): FROMBUFFER})


class BatchUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise ActError(f"refused: the pickle calls {module}.{name}, which a CIFAR file never needs "
                           "(a crafted file?); nothing in it was run")
        return ALLOWED[(module, name)]


def field(batch: dict, key: str, where: str):
    """batch[key], or an ActError naming the file that lacks it."""
    if key not in batch:
        raise ActError(f"{where}: has no {key!r} entry (keys: {', '.join(sorted(batch))})")
    return batch[key]


def decode(value) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def read_batch(members: Members, name: str, labels_key: str, num_classes: int) -> Split:
    """One batch file: N x 32 x 32 x 3 uint8 images and their labels, in file order."""
    batch = members.load(name)
    where = members.where(name)
    data = np.asarray(field(batch, "data", where))
    labels = np.asarray(field(batch, labels_key, where))
    if data.dtype != np.uint8:
        raise ActError(f"{where}: 'data' has dtype {data.dtype}, expected uint8")
    if data.size % PIXELS:
        raise ActError(f"{where}: 'data' holds {data.size} values, not a multiple of 3072 (3 x 32 x 32): truncated?")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    if labels.ndim != 1 or len(labels) != len(images) or (len(labels) and labels.dtype.kind not in "iu"):
        raise ActError(f"{where}: {labels_key!r} must list one integer label per image "
                       f"({len(images)} images, labels of shape {labels.shape})")
    check_labels(labels, num_classes, where)
    return Split(labels=labels, images=np.ascontiguousarray(images))
