"""The reader of a folder `act convert` wrote (`pipeline.path`): its Source, checked against the config.

The folder's format is described in act/commands/convert.py, which writes it; this module reads it back
as a Source of re-encoded files and the labels it stored (noisy labels are never stored: they
come from the run's noise settings).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from act.datasets.base import Source, Split
from act.errors import ActError
from act.schema import array_mismatch, mismatch

MANIFEST = "manifest.json"
VERSION = 1
# What this reader takes from a manifest and its labels.npz (act/schema.py).
MANIFEST_SCHEMA = {"source": {"name": str}, "classes": [str], "counts": {"train": int, "test": int},
                   "truncated_images": {"files": [{"file": str}]},
                   "image": {"label_space": int, "augment": str, "image_size": int, "resize": int, "channels": int,
                             "mean": [float], "std": [float]}}
LABEL_ARRAYS = {"train_labels": (1, "iu"), "test_labels": (1, "iu")}


def read_converted(path: str | Path) -> Source:
    """The Source of a converted folder: its re-encoded files and the labels it stored."""
    path = Path(path)
    manifest = read_manifest(path)
    try:
        with np.load(path / "labels.npz", allow_pickle=False) as npz:
            wrong = array_mismatch(npz, LABEL_ARRAYS)
            labels = {key: npz[key] for key in npz.files}
        if wrong:
            raise ActError(f"{path / 'labels.npz'} does not hold what act convert writes ({wrong}): convert again")
        lists = {name: (path / f"{name}.txt").read_text().splitlines() for name in ("train", "test")}
        image = manifest["image"]
        counts = {name: manifest["counts"][name] for name in ("train", "test")}
        recovered = recovered_files(manifest)
        splits = {name: Split(labels=labels[f"{name}_labels"], files=[str(path / line.split(" ", 1)[0]) for line in lists[name]])
                  for name in ("train", "test")}
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise ActError(f"pipeline.path={path} is an incomplete or damaged conversion ({describe(exc)}): convert again") from exc
    for name, split in splits.items():
        if len(split) != counts[name]:
            raise ActError(f"{path / (name + '.txt')} lists {len(split)} images, the manifest {counts[name]}: convert again")
    return Source(name=manifest["source"]["name"], train=splits["train"], test=splits["test"],
                  classes=manifest["classes"], label_space=image["label_space"], augment=image["augment"],
                  image_size=image["image_size"], resize=image["resize"], channels=image["channels"],
                  mean=tuple(image["mean"]), std=tuple(image["std"]), recovered=recovered)


def read_manifest(path: str | Path) -> dict:
    """The checked manifest of the conversion at `path` (pipeline.path); one line where there is none.
    Reads no image or label: a run's preflight calls it too."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise ActError(f"pipeline.path={path}: no {MANIFEST}; write one with `act convert --format dali --out {path}`")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ActError(f"{path / MANIFEST} cannot be read as JSON ({exc}): convert again") from exc
    if not isinstance(manifest, dict) or manifest.get("version") != VERSION:
        version = manifest.get("version") if isinstance(manifest, dict) else None
        raise ActError(f"{path / MANIFEST} is version {version}; this act reads version {VERSION}: convert again")
    wrong = mismatch({"truncated_images": {"files": []}, **manifest}, MANIFEST_SCHEMA)
    if wrong:
        raise ActError(f"{path / MANIFEST} does not hold what act convert writes ({wrong}): convert again")
    return manifest


def recovered_files(manifest: dict) -> tuple[str, ...]:
    """The truncated originals a conversion stored as far as PIL recovered them (none in a
    conversion written before it listed them)."""
    return tuple(entry["file"] for entry in manifest.get("truncated_images", {}).get("files", []))


def read_converted_for(cfg) -> Source:
    """The Source of `pipeline.path`, refused (one line) where it is not the data set the
    config names or not at the image size it asks for: a run's data set and image size are
    what its config says, whatever folder they are read from."""
    source = read_converted(cfg.pipeline.path)
    if source.name != cfg.data.name:
        raise ActError(f"pipeline.path={cfg.pipeline.path} holds a conversion of {source.name}, but data.name="
                       f"{cfg.data.name}; set data.name={source.name} (or point pipeline.path at a conversion of "
                       f"{cfg.data.name})")
    if cfg.data.image_size and cfg.data.image_size != source.image_size:
        raise ActError(f"pipeline.path={cfg.pipeline.path} was converted at image size {source.image_size}, but "
                       f"data.image_size={cfg.data.image_size}; convert again with data.image_size="
                       f"{cfg.data.image_size} or set data.image_size={source.image_size} (or 0)")
    return source


def describe(exc: Exception) -> str:
    """What went wrong reading a converted folder, in a few words naming the file or entry."""
    if isinstance(exc, OSError) and exc.filename:
        return f"{Path(exc.filename).name}: {exc.strerror or exc}"
    if isinstance(exc, KeyError):
        return f"no entry {exc.args[0]!r}"
    return str(exc)
