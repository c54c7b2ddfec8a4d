"""The `ffcv` pipeline: FFCV's Loader over the `.beton` files of `act convert --format ffcv`.

FFCV decodes each JPEG once in its compiled worker threads and crops it twice
(pipelines/ffcv_decoder.py): the weak and the strong view's resize + random crop + flip of the
Source's ViewSpec (pipelines/views.py), drawn independently, handed over as uint8; on the
training device the strong one goes through the public policy (the batched ops of
pipelines/ops, seeded by (seed, epoch)) and both are normalised. `pipeline.views=ffcv-resized-crop`
is the faster variant: FFCV's RandomResizedCrop (scale 0.08-1) and flip as the weak view, and
the strong view the policy applied to that same crop. The epoch order is `Pipeline.epoch_order` (every index once, the last
partial batch kept, seeded by (seed, epoch), so resumable); FFCV's own crop and flip draws
are not seeded, so a resumed run repeats the order but not each crop. Under DDP each
process walks its part of the epoch (`Pipeline.rank_order`, pipelines/shard.py), not FFCV's
`distributed` order, whose DistributedSampler strides the order and pads it with repeats. Test: centre crop, no augmentation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from act.datasets.base import Source
from act.errors import ActError
from pipelines.base import Batch, Pipeline
from pipelines.ops.policy import POLICIES
from pipelines.registry import register
from pipelines.views import file_view_spec

INSTALL = ("apt-get install pkg-config libopencv-dev libturbojpeg0-dev, then "
           "pip install 'act-noisy[ffcv]'")


@register
class FfcvPipeline(Pipeline):
    name = "ffcv"
    variants = {"ffcv-resized-crop": "FFCV's RandomResizedCrop (scale 0.08-1); the strong view reuses it"}

    def __init__(self, source: Source, noisy: np.ndarray, **kwargs):
        super().__init__(source, noisy, **kwargs)
        try:
            import ffcv  # noqa: F401
        except ImportError as exc:
            raise ActError(f"pipeline.name=ffcv needs FFCV: {INSTALL}") from exc
        if not self.path or not (Path(self.path) / "train.beton").is_file():
            raise ActError("pipeline.name=ffcv needs pipeline.path with train.beton and test.beton: "
                           "write them with `act convert --format ffcv --out DIR`")
        self.spec = file_view_spec(source, self.name)
        self.policy = POLICIES[self.spec.strong]
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

        from pipelines.ffcv_decoder import PublicViewsDecoder

        size, resize = self.source.image_size, self.source.resize or self.source.image_size
        # On CUDA, FFCV's own thread copies each batch to the device (pinned, asynchronous), so
        # the training loop never waits on a host-to-device copy.
        to_device = [ToDevice(self.device, non_blocking=True)] if self.device.type == "cuda" else []
        if train and self.views == "public":
            image = [PublicViewsDecoder(size, resize, self.spec.flip), ToTensor(), *to_device]
        elif train:
            flip = [RandomHorizontalFlip()] if self.spec.flip else []
            image = [RandomResizedCropRGBImageDecoder((size, size)), *flip, ToTensor(), *to_device, ToTorchImage()]
        else:
            image = [CenterCropRGBImageDecoder((size, size), ratio=size / resize), ToTensor(), *to_device,
                     ToTorchImage()]
        pipelines = {"image": image,
                     "label": [IntDecoder(), ToTensor(), *to_device], "index": [IntDecoder(), ToTensor(), *to_device]}
        return Loader(str(Path(self.path) / f"{split}.beton"), batch_size=batch_size,
                      num_workers=max(1, self.workers), order=OrderOption.SEQUENTIAL, drop_last=False,
                      seed=self.seed, pipelines=pipelines)

    def train_batches(self, epoch: int, strong: bool | None = None) -> Iterator[Batch]:
        strong = self.wants_strong(strong)
        # FFCV's sequential order walks the loader's index array as given: give it this epoch's.
        self.train_loader.traversal_order.indices = self.rank_order(epoch).numpy().astype(np.uint64)
        generator = torch.Generator(device=self.device).manual_seed(self.view_seed(epoch))
        for images, _, index in self.train_loader:
            # FFCV reuses its output buffers for later batches: copy out of them (on the device
            # when FFCV put them there, so the copy does not block).
            index = index.view(-1).to(self.device, dtype=torch.long, copy=True, non_blocking=True)
            weak, crops = self.views_of(images.to(self.device, copy=True, non_blocking=True))
            # An epoch without the strong view (warm-up) leaves the decoder's second crop unused.
            yield self.labelled(index, self.normalise(weak), self.public_strong_view(crops, generator) if strong else None)

    def views_of(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(weak, the strong view's input) as uint8 N x C x H x W: the public decoder's two crops
        (N x 2 x H x W x C), or the variant's one crop for both."""
        if self.views == "public":
            return images[:, 0].permute(0, 3, 1, 2), images[:, 1].permute(0, 3, 1, 2).contiguous()
        return images, images.contiguous()

    def test_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels, _ in self.test_loader:
            yield self.normalise(images), labels.view(-1).to(self.device, dtype=torch.long, copy=True, non_blocking=True)
