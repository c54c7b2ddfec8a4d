"""`act convert`: write an image-file data set once in a format a fast pipeline reads.

Format `dali` (a folder):
  manifest.json     source, classes, counts, image settings, bad files, sha256 of every list
  labels.npz        true labels of each split and each sample's index in the original Source
  train.txt, test.txt   DALI `readers.file` file lists: "<image path> <sample index>"
  images/{train,test}/NNNNNNNN.jpg   every image decoded once, shrunk so its longer side is at
                    most --max-side, re-encoded as baseline JPEG (what nvJPEG decodes fastest)
Re-encoding instead of copying the originals makes every file decodable by DALI's `mixed`
decoder (no PNG/CMYK/progressive surprises) and bounds decode cost. Noisy labels are not
stored: they come from the run's noise settings, so one conversion serves every setting.

The output is built in a temporary sibling folder and renamed into place at the end, so an
interrupted conversion never leaves a folder that looks complete; converting twice gives
the same bytes (no time stamps, sorted fields, deterministic JPEG encoding).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from act.config import Config
from act.datasets import read_source
from act.datasets.base import Source, Split
from act.errors import ActError

FORMATS = ("dali", "ffcv")
MANIFEST = "manifest.json"
VERSION = 1


def convert(cfg: Config, fmt: str, out: str | Path, *, force: bool = False, skip_bad: bool = False,
            max_side: int = 0, quality: int = 90, progress: bool | None = None) -> dict:
    """Convert the file data set named by `cfg.data` into `out`; returns the manifest."""
    if fmt not in FORMATS:
        raise ActError(f"--format {fmt!r} is not available; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise ActError(f"{out} already exists; give another --out or add --force to replace it")
    source = read_source(cfg.data.name, cfg.data.root, cfg.data.image_size, cfg.data.noise.openset_ratio)
    if source.is_array:
        raise ActError(f"data set {cfg.data.name} is held as arrays; the tensor pipeline reads it directly, "
                       "convert is for image-file data sets")
    max_side = max_side or (source.resize or source.image_size) * 2
    show = sys.stderr.isatty() if progress is None else progress
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        manifest = write_files(source, tmp, skip_bad=skip_bad, max_side=max_side, quality=quality, progress=show)
        if fmt == "ffcv":
            manifest["sha256"].update(write_betons(tmp, quality))
        manifest["format"] = fmt
        manifest["source"] = {"name": cfg.data.name, "root": str(cfg.data.root), "image_size": source.image_size}
        manifest["settings"] = {"max_side": max_side, "quality": quality, "skip_bad": skip_bad}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def replace_dir(new: Path, out: Path) -> None:
    """Move `new` to `out`; an existing `out` (only reached with --force) is removed after."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)


def write_files(source: Source, out: Path, *, skip_bad: bool, max_side: int, quality: int, progress: bool) -> dict:
    bad: list[dict] = []
    counts, labels, checksums = {}, {}, {}
    for split_name, split in (("train", source.train), ("test", source.test)):
        folder = out / "images" / split_name
        folder.mkdir(parents=True)
        kept, lines = [], []
        for i in progress_bar(range(len(split)), progress, f"convert {split_name}"):
            path = split.files[i]
            try:
                image = load_rgb(path, max_side)
            except ActError as exc:
                bad.append({"split": split_name, "file": str(path), "error": str(exc)})
                continue
            name = f"images/{split_name}/{len(kept):08d}.jpg"
            image.save(out / name, "JPEG", quality=quality)
            lines.append(f"{name} {len(kept)}\n")
            kept.append(i)
        if bad and not skip_bad:
            named = "; ".join(b["error"] for b in bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise ActError(f"{len(bad)} unreadable image(s) in {split_name}: {named}. Fix or remove them, or add "
                           f"--skip-bad to leave them out (they are listed in the manifest)")
        (out / f"{split_name}.txt").write_text("".join(lines))
        checksums[f"{split_name}.txt"] = sha256(out / f"{split_name}.txt")
        counts[split_name] = len(kept)
        labels[f"{split_name}_labels"] = split.labels[kept]
        labels[f"{split_name}_source_index"] = np.asarray(kept, dtype=np.int64)
        if not kept:
            raise ActError(f"no readable image left in the {split_name} split of {source.name}")
    with open(out / "labels.npz", "wb") as f:
        np.savez(f, **labels)
    checksums["labels.npz"] = sha256(out / "labels.npz")
    image_digest = hashlib.sha256()
    for path in sorted((out / "images").rglob("*.jpg")):
        image_digest.update(path.read_bytes())
    checksums["images"] = image_digest.hexdigest()
    return {"version": VERSION, "classes": source.classes, "counts": counts, "bad_files": bad,
            "sha256": checksums, "image": asdict_source(source)}


def write_betons(out: Path, quality: int) -> dict[str, str]:
    """FFCV `.beton` files of both splits from the re-encoded images: JPEG image, true label,
    sample index (the same order as the file lists)."""
    try:
        from ffcv.fields import IntField, RGBImageField
        from ffcv.writer import DatasetWriter
    except ImportError as exc:
        raise ActError("--format ffcv needs FFCV: apt-get install pkg-config libopencv-dev libturbojpeg0-dev, "
                       "then pip install 'act-noisy[ffcv]'") from exc
    labels = np.load(out / "labels.npz")
    checksums = {}
    for split in ("train", "test"):
        files = [out / line.split(" ", 1)[0] for line in (out / f"{split}.txt").read_text().splitlines()]
        rows = BetonRows(files, labels[f"{split}_labels"])
        fields = {"image": RGBImageField(write_mode="jpg", jpeg_quality=quality), "label": IntField(),
                  "index": IntField()}
        DatasetWriter(str(out / f"{split}.beton"), fields, num_workers=1).from_indexed_dataset(rows)
        checksums[f"{split}.beton"] = sha256(out / f"{split}.beton")
    return checksums


class BetonRows:
    """(HxWx3 uint8 image, label, index) rows for FFCV's writer."""

    def __init__(self, files: list[Path], labels: np.ndarray):
        self.files, self.labels = files, labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        with Image.open(self.files[i]) as img:
            return np.asarray(img.convert("RGB")), int(self.labels[i]), i


def asdict_source(source: Source) -> dict:
    """The Source's image settings a pipeline needs to rebuild it from the converted files."""
    return {"augment": source.augment, "image_size": source.image_size, "resize": source.resize,
            "channels": source.channels, "mean": list(source.mean), "std": list(source.std),
            "label_space": source.label_space}


def load_rgb(path: str, max_side: int) -> Image.Image:
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
    except Exception as exc:
        raise ActError(f"image {path} cannot be read: {exc}") from exc
    if max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)
    return img


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def progress_bar(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, leave=False, dynamic_ncols=True)


def read_converted(path: str | Path) -> Source:
    """The Source of a converted folder: its re-encoded files and the labels it stored."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ActError(f"pipeline.path={path}: no {MANIFEST}; write one with `act convert --format dali --out {path}`")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("version") != VERSION:
        raise ActError(f"{manifest_path} is version {manifest.get('version')}; this act reads version {VERSION}: convert again")
    labels = np.load(path / "labels.npz")
    splits = {}
    for name in ("train", "test"):
        files = [str(path / line.split(" ", 1)[0]) for line in (path / f"{name}.txt").read_text().splitlines()]
        if len(files) != manifest["counts"][name]:
            raise ActError(f"{path / (name + '.txt')} lists {len(files)} images, the manifest {manifest['counts'][name]}: convert again")
        splits[name] = Split(labels=labels[f"{name}_labels"], files=files)
    image = manifest["image"]
    return Source(name=manifest["source"]["name"], train=splits["train"], test=splits["test"],
                  classes=manifest["classes"], label_space=image["label_space"], augment=image["augment"],
                  image_size=image["image_size"], resize=image["resize"], channels=image["channels"],
                  mean=tuple(image["mean"]), std=tuple(image["std"]))

