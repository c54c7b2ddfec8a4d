"""The `ffcv` pipeline: FFCV's Loader over the `.beton` files of `act convert --format ffcv`.

FFCV decodes JPEGs in its compiled worker threads with a random-resized crop and a flip
(the weak view), and hands uint8 batches over; the strong view is the tensor pipeline's
batched RandAugment (pipelines/ops) applied on the training device to that batch, and both
are normalised there. The epoch order is `Pipeline.epoch_order` (every index once, the last
partial batch kept, seeded by (seed, epoch), so resumable); FFCV's own crop and flip draws
are not seeded, so a resumed run repeats the order but not each crop. `distributed=True`
lets FFCV split the order between DDP ranks. Test: centre crop, no augmentation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from act.datasets.base import Source
from act.errors import ActError
from pipelines.base import Batch, Pipeline, epoch_seed
from pipelines.ops import rand_augment

INSTALL = ("apt-get install pkg-config libopencv-dev libturbojpeg0-dev, then "
           "pip install 'act-noisy[ffcv]'")


class FfcvPipeline(Pipeline):
    name = "ffcv"

    def __init__(self, source: Source, noisy: np.ndarray, distributed: bool = False, **kwargs):
        super().__init__(source, noisy, **kwargs)
        try:
            import ffcv  # noqa: F401
        except ImportError as exc:
            raise ActError(f"pipeline.name=ffcv needs FFCV: {INSTALL}") from exc
        if not self.path or not (Path(self.path) / "train.beton").is_file():
            raise ActError("pipeline.name=ffcv needs pipeline.path with train.beton and test.beton: "
                           "write them with `act convert --format ffcv --out DIR`")
        self.distributed = distributed
        shape = (1, len(source.mean), 1, 1)
        self.mean = torch.tensor(source.mean, device=self.device).view(shape) * 255
        self.std = torch.tensor(source.std, device=self.device).view(shape) * 255
        self.train_loader = self.loader("train", train=True, batch_size=self.batch_size)
        self.test_loader = self.loader("test", train=False, batch_size=self.test_batch_size)

    def loader(self, split: str, train: bool, batch_size: int):
        from ffcv.fields.decoders import (
            CenterCropRGBImageDecoder,
            IntDecoder,
            RandomResizedCropRGBImageDecoder,
        )
        from ffcv.loader import Loader, OrderOption
        from ffcv.transforms import RandomHorizontalFlip, ToDevice, ToTensor, ToTorchImage

        size = self.source.image_size
        if train:
            image = [RandomResizedCropRGBImageDecoder((size, size)), RandomHorizontalFlip()]
        else:
            image = [CenterCropRGBImageDecoder((size, size), ratio=size / (self.source.resize or size))]
        # On CUDA, FFCV's own thread copies each batch to the device (pinned, asynchronous), so
        # the training loop never waits on a host-to-device copy.
        to_device = [ToDevice(self.device, non_blocking=True)] if self.device.type == "cuda" else []
        pipelines = {"image": image + [ToTensor(), *to_device, ToTorchImage()],
                     "label": [IntDecoder(), ToTensor(), *to_device], "index": [IntDecoder(), ToTensor(), *to_device]}
        return Loader(str(Path(self.path) / f"{split}.beton"), batch_size=batch_size,
                      num_workers=max(1, self.workers), order=OrderOption.SEQUENTIAL, drop_last=False,
                      distributed=self.distributed and train, seed=self.seed, pipelines=pipelines)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N x C x H x W (any device) -> float32 normalised on the device (a new tensor)."""
        out = images.to(self.device, non_blocking=True).float().sub_(self.mean).div_(self.std)
        return out.contiguous(memory_format=torch.channels_last) if self.device.type == "cuda" else out.contiguous()

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        # FFCV's sequential order walks the loader's index array as given: give it this epoch's.
        self.train_loader.traversal_order.indices = self.epoch_order(epoch).numpy().astype(np.uint64)
        generator = torch.Generator(device=self.device).manual_seed(epoch_seed(self.seed, epoch))
        for images, _, index in self.train_loader:
            # FFCV reuses its output buffers for later batches: copy out of them (on the device
            # when FFCV put them there, so the copy does not block).
            index = index.view(-1).to(self.device, dtype=torch.long, copy=True)
            uint8 = images.to(self.device, copy=True).contiguous()
            strong = self.normalise(rand_augment(uint8, generator, self.static)) if self.strong else None
            yield self.labelled(index, self.normalise(uint8), strong)

    def test_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels, _ in self.test_loader:
            yield self.normalise(images), labels.view(-1).to(self.device, dtype=torch.long, copy=True)
