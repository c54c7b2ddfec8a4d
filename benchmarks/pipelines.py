"""Images/s delivered by each pipeline, both views, in one process and one run.

    python -m benchmarks.pipelines --data cifar10n --root DIR --pipelines reference,tensor \
        --device cpu|cuda --json OUT.json
    python -m benchmarks.pipelines --path CONVERTED_DIR --pipelines reference,dali --device cuda
    python -m benchmarks.pipelines --synthetic-files 240 --pipelines reference,dali,ffcv

Without --root the data are random uint8 CIFAR-shaped arrays (50,000 x 32 x 32 x 3); with
--path, the image files of a folder written by `act convert` (both pipelines read them); with
--synthetic-files N, N random 500x375 JPEGs of 10 classes (+ N/4 for test) written to a
temporary image folder and converted with `act convert --format ffcv` (which DALI reads too). The
reference pipeline runs with one worker per CPU core. Each pipeline gets a warm-up of
`--warmup-batches` batches, then `--batches` batches are timed (the device synchronised
before the clock is read); images/s counts samples delivered with both views.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from act.commands.convert import convert
from act.config import load_config
from act.datasets import read_data
from act.datasets.base import Source, Split
from act.datasets.converted import read_converted
from benchmarks.record import command_line, write_record
from pipelines import build_pipeline


def random_cifar(n: int = 50_000, n_test: int = 10_000, classes: int = 10, seed: int = 0, size: int = 32) -> Source:
    rs = np.random.RandomState(seed)
    return Source(name="random-cifar",
                  train=Split(labels=rs.randint(0, classes, n),
                              images=rs.randint(0, 256, (n, size, size, 3), dtype=np.uint8)),
                  test=Split(labels=rs.randint(0, classes, n_test),
                             images=rs.randint(0, 256, (n_test, size, size, 3), dtype=np.uint8)),
                  classes=[str(i) for i in range(classes)], image_size=size)


def synthetic_files(n: int, folder: Path, fmt: str = "ffcv", shape: tuple[int, int] = (375, 500),
                    image_size: int | None = None) -> Path:
    """N random JPEGs (height x width `shape`, 500x375 by default) of 10 classes in an image folder
    (train/ and val/), converted into `folder`/converted with `act convert --format fmt` (at
    `image_size`, else the folder data set's default); returns the converted folder."""
    from PIL import Image

    rs = np.random.RandomState(0)
    for split, count in (("train", n), ("val", max(10, n // 4))):
        for i in range(count):
            target = folder / "images" / split / f"c{i % 10}"
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rs.randint(0, 256, (*shape, 3), dtype=np.uint8)).save(target / f"{i:05d}.jpg", quality=90)
    size = [f"data.image_size={image_size}"] if image_size else []
    cfg = load_config(None, ["data.name=folder", f"data.root={folder / 'images'}", *size])
    convert(cfg, fmt, folder / "converted", progress=False)
    return folder / "converted"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, source: Source, device: torch.device, batch_size: int, batches: int, warmup: int,
            workers: int, path: str | None = None) -> dict:
    pipeline = build_pipeline(name, source, source.train.labels.copy(), batch_size=batch_size, device=device,
                              seed=0, workers=workers, strong=True, path=path)
    it = pipeline.train_batches(0)
    for _ in range(warmup):
        next(it)
    sync(device)
    start = time.perf_counter()
    count = 0
    for _ in range(batches):
        batch = next(it, None)
        if batch is None:
            it = pipeline.train_batches(1)
            batch = next(it)
        count += len(batch.index)
    sync(device)
    seconds = time.perf_counter() - start
    return {"pipeline": name, "images_per_s": count / seconds, "images": count, "seconds": seconds,
            "workers": workers if name in ("reference", "dali", "ffcv") else 0}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="cifar10n", help="data.name of the data set read from --root")
    parser.add_argument("--root", default=None, help="data root; without it, random CIFAR-shaped data")
    parser.add_argument("--path", default=None, help="a folder written by `act convert` (image files)")
    parser.add_argument("--synthetic-files", type=int, default=0, metavar="N",
                        help="N random JPEGs, converted with act convert --format ffcv, instead of --path")
    parser.add_argument("--pipelines", default="reference,tensor")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--warmup-batches", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="reference pipeline workers")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as scratch:
        path = str(synthetic_files(args.synthetic_files, Path(scratch))) if args.synthetic_files else args.path
        if path:
            source = read_converted(path)
        else:
            # a data set from disk through the trainer's reader, its settings validated by the config
            source = read_data(load_config(None, [f"data.name={args.data}", f"data.root={args.root}"])) \
                if args.root else random_cifar()
        results = [measure(name, source, device, args.batch_size, args.batches, args.warmup_batches, args.workers,
                           path) for name in args.pipelines.split(",")]
    data = f"{args.synthetic_files} synthetic 500x375 JPEGs, converted" if args.synthetic_files else \
        f"converted: {Path(args.path).name}" if args.path else (args.data if args.root else "random-cifar")
    report = {"device": device_name(device), "torch": torch.__version__, "data": data, "image_size": source.image_size,
              "batch_size": args.batch_size, "results": results}
    base = next((r["images_per_s"] for r in results if r["pipeline"] == "reference"), None)
    print(f"device: {report['device']}   batch {args.batch_size}, both views")
    print(f"{'pipeline':>10}  {'images/s':>10}  {'x reference':>11}")
    for r in results:
        ratio = f"{r['images_per_s'] / base:.1f}" if base else "-"
        print(f"{r['pipeline']:>10}  {r['images_per_s']:>10.0f}  {ratio:>11}")
    if args.json:
        write_record(args.json, "pipelines", {"results": results}, command_line("benchmarks.pipelines", argv),
                     {k: report[k] for k in ("data", "image_size", "batch_size")}, report["device"])
    return report


if __name__ == "__main__":
    main()
