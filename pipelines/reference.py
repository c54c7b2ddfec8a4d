"""The `reference` pipeline: torchvision DataLoader workers + PIL, as the public ACT code does it.

It is the baseline every benchmark compares against and the fallback for any Source. Each
sample's augmentation draws from a numpy Generator seeded by (run seed, epoch, sample index),
so batches do not depend on the number of workers and a resumed run sees the same data.
"""
from __future__ import annotations

import signal
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset, Sampler

from act.datasets.base import Source, Split
from act.datasets.images import read_rgb
from act.errors import ActError
from pipelines.base import Batch, Pipeline, epoch_order, epoch_seed
from pipelines.registry import register
from pipelines.shard import shard_order
from pipelines.views import PIL_POLICIES, view_spec


def open_image(split: Split, i: int, recover_truncated: bool = False) -> tuple[Image.Image, bool]:
    """(sample i as a PIL image, whether its file was truncated and recovered: act/datasets/images.py)."""
    if split.images is not None:
        pixels = split.images[i]
        return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels), False
    return read_rgb(split.files[i], recover_truncated)


def crop_flip(img: Image.Image, size: int, padding: int, x: int, y: int, flip: bool) -> Image.Image:
    """The `size` square at (x, y) of the image zero-padded by `padding` (RandomCrop(size, padding)),
    mirrored when `flip`. Crop-then-flip equals the public Web order (flip, then crop) at the mirrored x."""
    if padding:
        img = ImageOps.expand(img, border=padding, fill=0)
    img = img.crop((x, y, x + size, y + size))
    return ImageOps.mirror(img) if flip else img


def resize_short(img: Image.Image, side: int) -> Image.Image:
    """Resize so the shorter side is `side` (torchvision Resize(int), bilinear).

    The longer side is truncated, not rounded, as torchvision computes it."""
    w, h = img.size
    if min(w, h) == side:
        return img
    if w <= h:
        return img.resize((side, int(side * h / w)), Image.BILINEAR)
    return img.resize((int(side * w / h), side), Image.BILINEAR)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """torchvision CenterCrop(size): offsets rounded half to even, as its round() does."""
    x, y = round((img.size[0] - size) / 2), round((img.size[1] - size) / 2)
    return img.crop((x, y, x + size, y + size))


class Views:
    """The weak, strong and test views of the Source's ViewSpec (pipelines/views.py), on PIL images."""

    def __init__(self, source: Source):
        self.spec = view_spec(source.augment, f"data set {source.name}")
        self.size = source.image_size
        self.resize = source.resize or source.image_size
        self.policy = PIL_POLICIES[self.spec.strong]
        self.mean = np.asarray(source.mean, dtype=np.float32)
        self.std = np.asarray(source.std, dtype=np.float32)

    def resized(self, img: Image.Image) -> Image.Image:
        return resize_short(img, self.resize) if self.spec.resize else img

    def weak(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        """A crop at a uniform position (x, then y) and a flip with p = 0.5, drawn from `rng`."""
        img = self.resized(img)
        room = 2 * self.spec.padding + 1
        x = int(rng.integers(0, img.size[0] - self.size + room))
        y = int(rng.integers(0, img.size[1] - self.size + room))
        flip = self.spec.flip and rng.random() < 0.5
        return crop_flip(img, self.size, self.spec.padding, x, y, flip)

    def strong(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        """Its own crop and flip, then the policy (the public code's second transform)."""
        return self.policy(self.weak(img, rng), rng)

    def test(self, img: Image.Image) -> Image.Image:
        return center_crop(self.resized(img), self.size) if self.spec.resize else img

    def to_tensor(self, img: Image.Image) -> torch.Tensor:
        """ToTensor + Normalize: float32 C x H x W."""
        x = np.asarray(img, dtype=np.float32) / 255.0
        if x.ndim == 2:
            x = x[..., None]
        return torch.from_numpy(((x - self.mean) / self.std).transpose(2, 0, 1).copy())


class TrainSet(Dataset):
    """Items are (index, epoch, strong) keys, so persistent workers need no epoch bookkeeping;
    `strong` False leaves the strong view out (an epoch whose loss does not read it). Each view
    draws from the sample's own (seed, epoch, index) stream, the weak one first, so leaving the
    strong view out changes nothing else."""

    def __init__(self, source: Source, noisy: np.ndarray, seed: int):
        self.split, self.noisy, self.seed = source.train, noisy, seed
        self.recover = source.recover_truncated
        self.views = Views(source)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, key: tuple[int, int, bool]):
        i, epoch, want_strong = key
        rng = np.random.default_rng(epoch_seed(self.seed, epoch, i))
        img, recovered = open_image(self.split, i, self.recover)
        weak = self.views.to_tensor(self.views.weak(img, rng))
        strong = self.views.to_tensor(self.views.strong(img, rng)) if want_strong else torch.empty(0)
        return i, weak, strong, int(self.noisy[i]), int(self.split.labels[i]), recovered


class TestSet(Dataset):
    def __init__(self, source: Source):
        self.split = source.test
        self.recover = source.recover_truncated
        self.views = Views(source)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        img, recovered = open_image(self.split, i, self.recover)
        return self.views.to_tensor(self.views.test(img)), int(self.split.labels[i]), i, recovered


class EpochBatches(Sampler):
    """Batches of (index, epoch, strong) in the order of `pipelines.base.epoch_order`; the last one may be short.

    It holds no reference to the pipeline: a pipeline -> loader -> sampler -> pipeline cycle
    would leave a dropped pipeline to the cyclic garbage collector, whose teardown order
    stalls the persistent workers' shutdown for 5 s each."""

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, ranks: int = 1):
        self.size, self.batch_size, self.seed, self.rank, self.ranks = size, batch_size, seed, rank, ranks
        self.epoch, self.strong = 0, True

    def __iter__(self):
        epoch, strong = self.epoch, self.strong  # read once: the loader draws batches ahead, maybe after the next epoch was set
        order = shard_order(epoch_order(self.size, self.seed, epoch), self.batch_size, self.rank, self.ranks).tolist()
        for start in range(0, len(order), self.batch_size):
            yield [(i, epoch, strong) for i in order[start:start + self.batch_size]]

    def __len__(self) -> int:
        return -(-len(shard_order(torch.arange(self.size), self.batch_size, self.rank, self.ranks)) // self.batch_size)


@register
class ReferencePipeline(Pipeline):
    name = "reference"

    def __init__(self, source: Source, noisy: np.ndarray, **kwargs):
        super().__init__(source, noisy, **kwargs)
        self.sampler = EpochBatches(len(source.train), self.batch_size, self.seed, self.rank, self.ranks)
        self.train_loader = self.loader(TrainSet(source, self.noisy, self.seed), batch_sampler=self.sampler)
        self.test_loader = self.loader(TestSet(source), batch_size=self.test_batch_size, shuffle=False)

    def loader(self, dataset: Dataset, **batching) -> DataLoader:
        # A private generator: each new loader iterator draws a worker base seed, which would
        # otherwise come from (and move) the trainer's global torch RNG. Samples draw from
        # their own (seed, epoch, index) streams, so the base seed never reaches the data.
        return DataLoader(dataset, num_workers=self.workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=self.workers > 0, generator=torch.Generator(),
                          worker_init_fn=leave_stopping_to_the_trainer, **batching)

    def train_batches(self, epoch: int, strong: bool | None = None) -> Iterator[Batch]:
        self.sampler.epoch, self.sampler.strong = epoch, self.wants_strong(strong)
        for index, weak, strong_view, _, _, recovered in reraise_user_errors(self.train_loader):
            self.note_recovered(self.source.train, index, recovered)
            # The labels the workers read (the public loader's) are those the base looks up on the device.
            yield self.labelled(self.to_device(index), self.to_device(weak),
                                self.to_device(strong_view) if self.sampler.strong else None)

    def test_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels, index, recovered in reraise_user_errors(self.test_loader):
            self.note_recovered(self.source.test, index, recovered)
            yield self.to_device(images), self.to_device(labels)

    def note_recovered(self, split: Split, index: torch.Tensor, recovered: torch.Tensor) -> None:
        """Keep the files of a batch that were truncated and recovered (the workers decode them;
        CPU tensors, no device sync): every file is read in an epoch, so after one the list is whole."""
        if recovered.any():
            self.recovered.update(split.files[i] for i in index[recovered].tolist())


def leave_stopping_to_the_trainer(worker_id: int) -> None:
    """A worker ignores SIGTERM and SIGINT. `kill` of the process group (a scheduler, Ctrl-C)
    reaches the workers too: torch's SIGTERM handler would end them, and the trainer, stopping
    with its one line, would then add a "worker killed by signal" traceback. The trainer alone
    stops and shuts its workers down (a worker also ends once its trainer is gone)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def reraise_user_errors(loader: DataLoader) -> Iterator:
    """A worker's ActError reaches the main process wrapped in a traceback text; keep its sentence."""
    try:
        yield from loader
    except ActError as exc:
        # torch re-raises a worker's error from a frame that holds it in a local: a reference
        # cycle through the traceback that would keep the loader's workers alive until the
        # cyclic collector runs, and its teardown order stalls their shutdown. Drop the traceback.
        exc.__traceback__ = None
        marker = "ActError: "
        lines = [line for line in str(exc).splitlines() if marker in line]
        raise ActError(lines[-1].split(marker, 1)[1] if lines else str(exc)) from None
