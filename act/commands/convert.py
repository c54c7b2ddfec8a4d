"""`act convert`: write an image-file data set once in a format a fast pipeline reads.

Format `dali` (a folder):
  manifest.json     source, classes, counts, image settings, bad files, truncated files stored
                    as far as PIL recovers them (Web-*, Food-101N: act/datasets/images.py),
                    sha256 of every list
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
import re
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from act.config import Config
from act.datasets import read_source
from act.datasets.base import Source
from act.datasets.converted import MANIFEST, VERSION
from act.datasets.images import read_rgb
from act.errors import ActError

FORMATS = ("dali", "ffcv")
WRITTEN_BY = "act convert"  # marks a folder act convert wrote: only such a folder is ever replaced


PARTIAL_MARK = ".act-convert-partial"  # inside a folder act convert is still writing
OUTPUT_FILES = {MANIFEST, "labels.npz", "train.txt", "test.txt", "train.beton", "test.beton"}
IMAGE_NAME = re.compile(r"[0-9]{8}\.jpg")
QUALITY = (1, 95)  # PIL: above 95 JPEG files grow with hardly any gain in quality


def convert(cfg: Config, fmt: str, out: str | Path, *, force: bool = False, skip_bad: bool = False,
            max_side: int = 0, quality: int = 90, progress: bool | None = None) -> dict:
    """Convert the file data set named by `cfg.data` into `out`; returns the manifest.

    Only a folder act convert wrote is ever replaced (`--force`), and never one that holds
    anything else; `out` may not overlap the data it reads."""
    if fmt not in FORMATS:
        raise ActError(f"--format {fmt!r} is not available; choose one of {', '.join(FORMATS)}")
    check_image_settings(max_side, quality)
    out = Path(out)
    check_named(out)
    clear_stale(out)
    check_target(out, force)
    source = read_source(cfg.data.name, cfg.data.root, cfg.data.image_size, cfg.data.noise.openset_ratio)
    if source.is_array:
        raise ActError(f"data set {cfg.data.name} is held as arrays; the tensor pipeline reads it directly, "
                       "convert is for image-file data sets")
    check_apart(out, cfg.data.root, source)
    floor = source.resize or source.image_size
    if max_side and max_side < floor:
        raise ActError(f"--max-side {max_side} is below {floor}, the side the pipelines resize these images to, so "
                       f"they would be scaled up again; give at least {floor} (0: twice that)")
    max_side = max_side or floor * 2
    show = sys.stderr.isatty() if progress is None else progress
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        tmp.mkdir(parents=True)
        (tmp / PARTIAL_MARK).write_text("an unfinished act convert output; safe to delete\n")
        manifest = write_files(source, tmp, skip_bad=skip_bad, max_side=max_side, quality=quality, progress=show)
        if fmt == "ffcv":
            manifest["sha256"].update(write_betons(tmp, quality))
        manifest["format"] = fmt
        manifest["written_by"] = WRITTEN_BY
        manifest["source"] = {"name": cfg.data.name, "root": str(cfg.data.root), "image_size": source.image_size}
        manifest["settings"] = {"max_side": max_side, "quality": quality, "skip_bad": skip_bad}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        (tmp / PARTIAL_MARK).unlink()
        check_target(out, force)
        replace_dir(tmp, out)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise ActError(f"writing the conversion for {out} failed: {exc.strerror or exc}{where}; "
                       f"{out} is as it was") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def check_image_settings(max_side: int, quality: int) -> None:
    if max_side < 0:
        raise ActError(f"--max-side {max_side} must be a number of pixels >= 1 (0: twice the resize side)")
    if not QUALITY[0] <= quality <= QUALITY[1]:
        raise ActError(f"--quality {quality} is outside {QUALITY[0]}..{QUALITY[1]} (JPEG quality; default 90)")


def check_named(out: Path) -> None:
    """The output is built beside `out` and renamed into place, so `out` must end in a folder's
    name: `.`, `..` or `/` name no place beside, and `sub/..` would be refused only after converting
    (`sub` made by the build)."""
    if out.name in ("", ".", ".."):
        raise ActError(f"--out {out} does not end in a folder name; give the output folder by its name "
                       f"(here: {os.path.realpath(out)})")


def check_target(out: Path, force: bool) -> None:
    """Refuse to replace `out` unless it is absent, an empty folder, or (with force) a folder
    holding only what act convert wrote."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ActError(f"--out {out} is a file or a link; give a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    if not force:
        raise ActError(f"{out} already exists; give another --out or add --force to replace it")
    if conversion_manifest(out) is None:
        raise ActError(f"--force replaces only a folder act convert wrote, and {out} holds no {MANIFEST} of act "
                       "convert; give another --out (nothing was deleted)")
    foreign = foreign_entry(out)
    if foreign:
        raise ActError(f"{out} holds {foreign}, which act convert did not write; move it out or give another "
                       "--out (nothing was deleted)")


def foreign_entry(out: Path) -> str | None:
    """The first entry of `out` that a conversion does not write, or None."""
    for entry in os.scandir(out):
        if entry.name == "images" and entry.is_dir(follow_symlinks=False):
            for split in os.scandir(entry.path):
                if split.name not in ("train", "test") or not split.is_dir(follow_symlinks=False):
                    return split.path
                for image in os.scandir(split.path):
                    if not IMAGE_NAME.fullmatch(image.name) or not image.is_file(follow_symlinks=False):
                        return image.path
        elif entry.name not in OUTPUT_FILES or not entry.is_file(follow_symlinks=False):
            return entry.path
    return None


def check_apart(out: Path, root: str | None, source: Source) -> None:
    """`out` must neither be, lie inside, nor hold the data being converted: a conversion inside
    `train/` would become a class of the next read."""
    target = Path(os.path.realpath(out))
    inputs = {Path(os.path.realpath(folder)) for folder in
              {os.path.dirname(f) for f in source.train.files + source.test.files}}
    if root:
        inputs.add(Path(os.path.realpath(root)))
    for folder in sorted(inputs):
        if target == folder or folder in target.parents:
            raise ActError(f"--out {out} lies inside the data being converted ({folder}); give a folder outside it")
        if target in folder.parents:
            raise ActError(f"--out {out} holds the data being converted ({folder}); give a folder outside it")


def clear_stale(out: Path) -> None:
    """Tidy what a killed conversion into `out` left beside it: its unfinished folders (recognised by
    PARTIAL_MARK) are removed; a previous conversion it had moved aside is put back when `out` is gone.
    Folders of a conversion still running, and anything not recognisably act convert's, are left alone."""
    if not out.parent.is_dir():
        return
    stale = re.compile(rf"\.{re.escape(out.name)}\.(partial|old)-([0-9]+)")
    for entry in sorted(out.parent.iterdir()):
        match = stale.fullmatch(entry.name)
        if not match or not entry.is_dir() or entry.is_symlink() or process_alive(int(match[2])):
            continue
        if match[1] == "partial" and (entry / PARTIAL_MARK).is_file():
            shutil.rmtree(entry)
        elif match[1] == "old" and conversion_manifest(entry) is not None and foreign_entry(entry) is None:
            if out.exists():
                shutil.rmtree(entry)
            else:
                os.replace(entry, out)


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a folder named for this process was left by an earlier one with the same id
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def replace_dir(new: Path, out: Path) -> None:
    """Move `new` to `out`; an existing `out` (checked by check_target) is moved aside, then removed."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        if old.exists():
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_files(source: Source, out: Path, *, skip_bad: bool, max_side: int, quality: int, progress: bool) -> dict:
    bad: list[dict] = []
    recovered: list[dict] = []
    counts, labels, checksums = {}, {}, {}
    for split_name, split in (("train", source.train), ("test", source.test)):
        folder = out / "images" / split_name
        folder.mkdir(parents=True)
        kept, lines = [], []
        for i in progress_bar(range(len(split)), progress, f"convert {split_name}"):
            path = split.files[i]
            try:
                image, truncated = load_rgb(path, max_side, source.recover_truncated)
            except ActError as exc:
                bad.append({"split": split_name, "file": str(path), "error": str(exc)})
                continue
            if truncated:
                recovered.append({"split": split_name, "file": str(path)})
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
            "truncated_images": {"count": len(recovered), "files": recovered},
            "sha256": checksums, "image": asdict_source(source)}


def write_betons(out: Path, quality: int) -> dict[str, str]:
    """FFCV `.beton` files of both splits from the re-encoded images: JPEG image, true label,
    sample index (the same order as the file lists)."""
    try:
        from ffcv.fields import IntField, RGBImageField
        from ffcv.writer import DatasetWriter
    except ImportError as exc:
        raise ActError("--format ffcv needs FFCV: apt-get install pkg-config libopencv-dev libturbojpeg0-dev, "
                       'then pip install "ffcv==1.0.2"') from exc
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


def load_rgb(path: str, max_side: int, recover_truncated: bool) -> tuple[Image.Image, bool]:
    """(the image decoded as the reference pipeline decodes it, shrunk to `max_side`; whether it was truncated)."""
    img, truncated = read_rgb(path, recover_truncated)
    if max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)
    return img, truncated


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def progress_bar(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, leave=False, dynamic_ncols=True)


def conversion_manifest(folder: Path) -> dict | None:
    """The manifest of a folder act convert wrote (it carries WRITTEN_BY), else None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("written_by") == WRITTEN_BY else None
