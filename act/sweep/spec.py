"""A sweep file -> the cells of a table, each validated as `act train` validates its config, and
the record that ties a sweep folder to one sweep.

A sweep file (YAML; every path relative to the file):
    base: FILE | [FILE, ...]      config files, each a part of the table; an entry may also be
                                  {config: FILE, set: {key: value}, name: NAME}: its own overrides, its name
    grid: {key: [v1, v2, ...]}    axes whose product with the bases gives the cells; an axis may also
                                  name a set of overrides per value: {axis: {name: {key: value}, ...}}
    set: {key: value}             overrides of every cell
A cell's overrides are its base's own, `set`, its grid values, then the command line's, in that
order.

A cell is its config, not its name. Its name is built from its resolved config: its base's stem
(or name), then one part per axis in the grid's order: a config key's shortest dotted ending that no
other axis shares and the value the config holds (`run.seed: ["01"]`: seed1), a named override
set's name, and for the noise keys (data.noise.type, closeset_ratio, openset_ratio) one part, the
noise tag (act/run/titles.py: sym20, asym40, clean, sym20-open20), where the first of them stands.
Two cells whose configs are equal are refused, and so are two cells that would share a name; a key
an axis names its cells after may be set by that axis alone (not `set`, a base or another axis).
The cells are counted before any config is built: a sweep of more than MAX_CELLS is refused unless
`act sweep --max-cells N` allows it.
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from act.config import (DATA_PLACES, Config, flatten, load_config, override, override_text, read_yaml,
                        to_dict)
from act.run.state import is_locked
from act.errors import ActError
from act.run.files import write_text
from act.run.folder import LOCK, RunLock
from act.run.titles import noise_tag
from act.schema import mismatch

SWEEP_KEYS = ("base", "grid", "set")
OWN_KEYS = ("run.out_dir", "run.name")  # the sweep names each run's folder: DIR/runs/<cell>
RUNS = "runs"  # DIR/runs/<cell>: the run folders
RECORD = "sweep.yaml"  # DIR/sweep.yaml: the sweep the folder holds
MAX_CELLS = 1000  # the most cells a sweep has unless --max-cells allows more
NOISE_KEYS = ("data.noise.type", "data.noise.closeset_ratio", "data.noise.openset_ratio")  # named by one tag
# Keys a rerun may change: where the data lie (each resume's data fingerprint compares what is read
# there), how a run shows itself, and the folder keys the sweep sets.
FREE_KEYS = (*OWN_KEYS, *DATA_PLACES, "run.progress", "run.plots", "run.tensorboard", "run.wandb")


@dataclass(frozen=True)
class Cell:
    """One run of the table: its name (its folder's), its base config file and its overrides."""

    name: str
    base: Path
    overrides: tuple[str, ...]

    def folder_keys(self, runs: Path) -> list[str]:
        return [f"run.out_dir={runs}", f"run.name={self.name}"]

    def config(self, runs: Path) -> Config:
        """The config `act train --config BASE OVERRIDES` builds for this cell's folder under `runs`."""
        return load_config(self.base, [*self.overrides, *self.folder_keys(runs)])


@dataclass(frozen=True)
class Axis:
    """One axis of the grid: per value, the part it adds to a cell's name as given and its
    overrides; `short`: the key's ending a value axis names its cells by (None: named override sets)."""

    key: str
    values: tuple[tuple[str, tuple[str, ...]], ...]
    given: tuple[str, ...]  # each value (or set's name) as the sweep gives it
    short: str | None = None


@dataclass
class Sweep:
    path: Path
    cells: list[Cell]
    overrides: list[str]  # the command line's, in every cell
    configs: dict[str, Config]  # each cell's, without its folder keys


def read_sweep(path: str | Path, overrides: list[str], grid: list[str] = (), max_cells: int = MAX_CELLS,
               tell: Callable[[int, int], None] | None = None) -> Sweep:
    """The cells of the sweep file at `path`, with the command line's overrides and `--grid` axes,
    each config built and validated (`tell(done, total)` after each, for a progress line)."""
    path = Path(os.path.abspath(path))
    if not path.is_file():
        raise ActError(f"sweep file {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    data = read_yaml(path)
    unknown = sorted(set(data) - set(SWEEP_KEYS))
    if unknown:
        raise ActError(f"sweep file {path}: unknown key {unknown[0]!r}; a sweep has {', '.join(SWEEP_KEYS)}")
    if not data.get("base"):
        raise ActError(f"sweep file {path} names no base config (base: FILE, or a list of files)")
    bases = read_bases(path, data["base"])
    fixed = overrides_of(path, "set", data.get("set") or {})
    axes = name_axes(read_grid(path, data.get("grid") or {}) + [grid_arg(item) for item in grid])
    setters = [(f"the set of base {label}", own) for label, _, own in bases] + [("set", fixed)]
    check_keys(path, setters, axes, list(overrides))
    total = check_count(path, len(bases), axes, max_cells)
    cells = []
    for label, base, own in bases:
        for picks in itertools.product(*(range(len(axis.values)) for axis in axes)):
            combo = [axis.values[i] for axis, i in zip(axes, picks)]
            cell = Cell("-".join([label, *(part for part, _ in combo)]), base,
                        (*own, *fixed, *(item for _, items in combo for item in items), *overrides))
            try:
                cfg = load_config(cell.base, list(cell.overrides))
            except ActError as exc:
                raise ActError(f"cell {cell.name}: {exc}") from None
            given = ", ".join([base.name, *(f"{axis.key}={axis.given[i]!r}" for axis, i in zip(axes, picks))])
            cells.append((dataclasses.replace(cell, name=cell_name(label, axes, combo, cfg)), cfg, given))
            if tell is not None:
                tell(len(cells), total)
    check_distinct(path, cells)
    return Sweep(path, [cell for cell, _, _ in cells], list(overrides), {cell.name: cfg for cell, cfg, _ in cells})


def check_count(path: Path, bases: int, axes: list[Axis], max_cells: int) -> int:
    """The number of cells; more than `max_cells`, refused before any config is built."""
    count = bases * math.prod(len(axis.values) for axis in axes)
    if count > max_cells:
        sizes = " x ".join([f"{bases} base{'s' if bases > 1 else ''}", *(f"{len(a.values)} {a.key}" for a in axes)])
        raise ActError(f"sweep file {path} makes {count} cells ({sizes}), more than the {max_cells} act sweep runs "
                       f"unasked; give fewer values, or --max-cells {count} to run them all")
    return count


def cell_name(label: str, axes: list[Axis], combo: tuple, cfg: Config) -> str:
    """The cell's name from its resolved config (the module's docstring: the naming rule)."""
    parts, noise_told = [label], False
    flat = flatten(to_dict(cfg))
    for axis, (part, _) in zip(axes, combo):
        if axis.short is None:
            parts.append(part)
        elif axis.key in NOISE_KEYS:
            if not noise_told:
                parts.append(noise_tag(dataclasses.asdict(cfg.data.noise)))
            noise_told = True
        else:
            parts.append(safe(f"{axis.short}{override_text(flat[axis.key])}"))
    return "-".join(parts)


def check_distinct(path: Path, cells: list[tuple[Cell, Config, str]]) -> None:
    """Two cells of one config, or two cells of one name, refused naming both as the sweep gives them
    (`given`: the base file and the grid values)."""
    seen: dict[str, tuple[Cell, str]] = {}
    for cell, cfg, given in cells:
        key = json.dumps({k: v for k, v in flatten(to_dict(cfg)).items() if k not in OWN_KEYS}, default=str)
        if key in seen:
            raise ActError(f"sweep file {path}: cells {seen[key][0].name} ({seen[key][1]}) and {cell.name} ({given}) "
                           f"would train the same config; give each value of an axis once")
        seen[key] = cell, given
    named: dict[str, tuple[Cell, str]] = {}
    for cell, _, given in cells:
        if cell.name in named:
            other, told = named[cell.name]
            same_values = told.partition(", ")[2] == given.partition(", ")[2]  # then the bases' labels clash
            advice = "name the bases: base: [{config: FILE, name: NAME}, ...]" if same_values else \
                "give values (or override-set names) that differ in letters, digits or . _ + -"
            raise ActError(f"sweep file {path}: cells of {told} and of {given} would both be named {cell.name}; "
                           f"{advice}")
        named[cell.name] = cell, given


def safe(text: str) -> str:
    """A part of a folder name: letters, digits and . _ + - kept, anything else an underscore."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


def overrides_of(path: Path, where: str, mapping) -> tuple[str, ...]:
    """`key=value` overrides of a mapping of the sweep file (dotted keys, or nested sections)."""
    if not isinstance(mapping, dict):
        raise ActError(f"sweep file {path}: {where} must be a mapping of config keys to values")
    items = flatten(mapping)
    for key, value in items.items():
        if not isinstance(value, str):
            raise ActError(f"sweep file {path}: {where}: {key} must be one value (a grid axis takes a list)")
    return tuple(f"{key}={value}" for key, value in items.items())


def read_bases(path: Path, entries) -> list[tuple[str, Path, tuple[str, ...]]]:
    """(name, file, own overrides) of each base."""
    found = []
    for entry in entries if isinstance(entries, list) else [entries]:
        name, own = None, ()
        if isinstance(entry, dict):
            if "config" not in entry or set(entry) - {"config", "set", "name"}:
                raise ActError(f"sweep file {path}: a base is a config file or {{config: FILE, set: {{key: value}}, "
                               f"name: NAME}}")
            name, own = entry.get("name"), overrides_of(path, f"the set of base {entry['config']}", entry.get("set") or {})
            entry = entry["config"]
        if not isinstance(entry, str) or not entry or not (name is None or isinstance(name, str) and name):
            raise ActError(f"sweep file {path}: a base names one config file (and a name, if given)")
        found.append((name, Path(os.path.normpath(path.parent / entry)), own))
    labels = base_labels([file for _, file, _ in found])
    return [(safe(name or label), file, own) for (name, file, own), label in zip(found, labels)]


def base_labels(files: list[Path]) -> list[str]:
    """Each file's stem, with as many of its parent folders as tell the different files apart
    (cifar100n/sym20.yaml and cifar80n/sym20.yaml: cifar100n-sym20, cifar80n-sym20)."""
    deepest = max(len(file.parts) for file in files)
    for depth in range(1, deepest + 1):
        labels = ["-".join(file.with_suffix("").parts[-depth:]) for file in files]
        if len(set(labels)) == len(set(files)):
            break
    return labels


def read_grid(path: Path, grid) -> list[tuple[str, list[str] | dict]]:
    """The grid's axes as (key, values): a list of values of a config key, or {name: overrides}."""
    if not isinstance(grid, dict):
        raise ActError(f"sweep file {path}: grid must be a mapping of config keys to lists of values")
    axes = []
    for key, values in grid.items():
        if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
            axes.append((key, values))
        elif isinstance(values, dict) and values and all(v == "" or isinstance(v, dict) for v in values.values()):
            axes.append((key, {name: overrides_of(path, f"grid.{key}.{name}", v or {}) for name, v in values.items()}))
        else:
            raise ActError(f"sweep file {path}: grid.{key} must be a list of values (e.g. [0, 1, 2]) or a mapping of "
                           f"named override sets ({{name: {{key: value}}}})")
    return axes


def grid_arg(item: str) -> tuple[str, list[str]]:
    """`--grid key=v1,v2` as an axis."""
    key, sep, values = item.partition("=")
    if not sep or not key.strip() or not values:
        raise ActError(f"--grid {item!r} is not of the form key=v1,v2 (e.g. --grid run.seed=0,1,2)")
    return key.strip(), values.split(",")


def name_axes(axes: list[tuple[str, list[str] | dict]]) -> list[Axis]:
    """Each value's part of a cell name: a config key's shortest dotted ending that no other axis
    shares, then the value (run.seed 0: seed0); a named override set: its name."""
    keys = [key for key, values in axes if isinstance(values, list)]
    named = []
    for key, values in axes:
        if isinstance(values, dict):
            named.append(Axis(key, tuple((safe(name), items) for name, items in values.items()), tuple(values)))
            continue
        parts = key.split(".")
        short = next(".".join(parts[-n:]) for n in range(1, len(parts) + 1)
                     if not any(other != key and ("." + other).endswith("." + ".".join(parts[-n:])) for other in keys))
        named.append(Axis(key, tuple((safe(f"{short}{value}"), (f"{key}={value}",)) for value in values),
                          tuple(values), short))
    return named


def key_of(item: str) -> str:
    return item.partition("=")[0].strip()


def check_keys(path: Path, setters: list[tuple[str, tuple[str, ...]]], axes: list[Axis],
               command_line: list[str]) -> None:
    """The folder keys are the sweep's; an axis is given once; a key a value axis names its cells
    after is set by that axis alone (not by `set`, a base's set, another axis or the command line)."""
    setters = setters + [(f"grid.{axis.key}.{part}", items) for axis in axes if axis.short is None
                         for part, items in axis.values]
    for key in [key_of(item) for _, items in setters for item in items] + [axis.key for axis in axes]:
        if key in OWN_KEYS:
            raise ActError(f"{key} is the sweep's to set: each run's folder is DIR/runs/<cell> (--out DIR)")
    seen: set[str] = set()
    for axis in axes:
        if axis.key in seen:
            raise ActError(f"grid axis {axis.key} is given twice (in {path.name} and --grid); give it once")
        seen.add(axis.key)
    named_after = {axis.key for axis in axes if axis.short is not None}
    for item in command_line:
        if key_of(item) in named_after:
            raise ActError(f"{item} on the command line would give every value of grid axis {key_of(item)} the same "
                           f"{key_of(item)}; drop it, or give the axis another list (--grid or the sweep file)")
    for where, items in setters:
        for key in (key_of(item) for item in items):
            if key in named_after:
                raise ActError(f"sweep file {path}: {where} sets {key}, which grid axis {key} names its cells after; "
                               f"set {key} in one place (the axis's list)")


def check_cells(sweep: Sweep, runs: Path, machine: bool, processes: int = 1) -> dict[str, Config]:
    """Every cell's config, built and refused as `act train` builds and refuses it (and, where the
    runs will train on this machine, as its Runtime refuses it), before anything starts; a
    refusal is one line naming the cell. What the cells read from the disk, and a data set's
    unset weights, are act/run/preflight.py's, which checks each once and names every cell it stops.
    `processes`: how many each cell's run has (a SLURM job's nodes x GPUs), whose global batch
    must divide among them."""
    from act.run.runtime import Environment, resolve
    from act.step.distributed import World, rank_batch

    env = Environment.read() if machine else None
    configs = {}
    for cell in sweep.cells:
        try:
            cfg = override(copy.deepcopy(sweep.configs[cell.name]), cell.folder_keys(runs))
            rank_batch(cfg, World(0, processes))
            if env is not None:
                resolve(cfg, env)
        except ActError as exc:
            raise ActError(f"cell {cell.name}: {exc}") from None
        configs[cell.name] = cfg
    return configs


def experiment_of(cfg: Config) -> dict:
    """The keys of a cell's config that are not act's defaults, but for FREE_KEYS."""
    default = flatten(to_dict(Config()))
    return {key: value for key, value in flatten(to_dict(cfg)).items()
            if key not in FREE_KEYS and value != default.get(key)}


def record_of(sweep: Sweep, configs: dict[str, Config]) -> dict:
    return {"sweep": str(sweep.path), "overrides": sweep.overrides,
            "cells": {cell.name: {"base": str(cell.base), "overrides": list(cell.overrides),
                                  "config": experiment_of(configs[cell.name])} for cell in sweep.cells}}


# DIR/sweep.yaml as act sweep writes it (act/schema.py), checked before any of it is used.
RECORD_SCHEMA = {"sweep": str, "overrides": [str], "cells": dict}
CELL_SCHEMA = {"base": str, "overrides": [str], "config": dict}


def read_record(out: Path) -> dict:
    """DIR/sweep.yaml as act sweep wrote it; one line naming what is wrong where it is not."""
    path = out / RECORD
    advice = "restore act sweep's record of the sweep this folder holds, or give another --out"
    try:
        record = yaml.safe_load(path.read_text())
    except (OSError, ValueError) as exc:
        raise ActError(f"{path} cannot be read ({exc}); {advice}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ActError(f"{path} is not valid YAML{where} ({getattr(exc, 'problem', None) or 'unreadable'}); "
                       f"{advice}") from exc
    wrong = "it is empty" if record is None else mismatch(record, RECORD_SCHEMA) or next(
        (f"cell {name}: {found}" for name, cell in record["cells"].items() if (found := mismatch(cell, CELL_SCHEMA))),
        None)
    if wrong:
        raise ActError(f"{path} is not the record act sweep writes ({wrong}); {advice}")
    return record


def check_same(out: Path, record: dict, sweep: Sweep, configs: dict[str, Config]) -> None:
    """This sweep is the one `out` holds, or one line naming the first difference."""
    held = f"--out {out} holds the sweep of {record.get('sweep')}" + \
        (f" {' '.join(record['overrides'])}" if record.get("overrides") else "")
    advice = "rerun that sweep, or give another --out"
    old = record["cells"]
    for cell in sweep.cells:
        if cell.name not in old:
            raise ActError(f"{held}, which has no cell {cell.name}: {advice}")
    for name in old:
        if name not in configs:
            raise ActError(f"{held}, whose cell {name} this sweep lacks: {advice}")
    default = flatten(to_dict(Config()))
    for name, cfg in configs.items():
        before, now = old[name]["config"], experiment_of(cfg)
        for key in sorted(set(before) | set(now)):
            if before.get(key, default.get(key)) != now.get(key, default.get(key)):
                raise ActError(f"{held}, whose cell {name} has {key}={before.get(key, default.get(key))}, here "
                               f"{now.get(key, default.get(key))}: {advice}")


def adopt_names(out: Path, sweep: Sweep, configs: dict[str, Config]) -> tuple[Sweep, dict[str, Config]]:
    """The sweep with the names its folder's record gives the same configs: a folder begun by an
    act that named cells otherwise (demo-closeset_ratio0.2-seed0, now demo-sym20-seed0) is
    continued under its own names. Unchanged unless the record holds the same configs, each once."""
    try:
        old = read_record(out)["cells"] if (out / RECORD).is_file() else {}
    except ActError:
        return sweep, configs  # open_folder says what is wrong with the record
    default = flatten(to_dict(Config()))

    def same(config: dict) -> str:
        return json.dumps({k: v for k, v in config.items() if v != default.get(k)}, sort_keys=True, default=str)

    held = {same(cell["config"]): name for name, cell in old.items()}
    names = {name: held.get(same(experiment_of(cfg))) for name, cfg in configs.items()}
    if None in names.values() or set(names.values()) != set(old) or all(new == was for new, was in names.items()):
        return sweep, configs
    cells = [dataclasses.replace(cell, name=names[cell.name]) for cell in sweep.cells]
    return (dataclasses.replace(sweep, cells=cells, configs={names[n]: c for n, c in sweep.configs.items()}),
            {names[n]: override(cfg, [f"run.name={names[n]}"]) for n, cfg in configs.items()})


def open_folder(out: Path, sweep: Sweep, configs: dict[str, Config]) -> RunLock:
    """The sweep folder `out`, locked for this process: new (with its record), or this sweep's.
    Another sweep's, a folder of other files, or one another act sweep is running is refused."""
    if (out / RECORD).is_file():
        check_same(out, read_record(out), sweep, configs)
    elif out.exists() and not out.is_dir():
        raise ActError(f"--out {out} is a file; give a folder (a new one, or one of this sweep's)")
    elif out.exists() and set(os.listdir(out)) - {LOCK}:
        raise ActError(f"--out {out} is not a sweep folder (it holds no {RECORD}) and is not empty; give a new folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = RunLock(out)
    except (OSError, ActError) as exc:
        if not is_locked(out):
            raise ActError(f"--out {out} cannot be written ({getattr(exc, 'strerror', None) or exc})") from exc
        owner = (out / LOCK).read_text().strip() or "unknown"
        raise ActError(f"sweep {out} is being run by another act sweep (process {owner}); "
                       f"`act sweep --status {out}` shows it") from None
    if (out / RECORD).is_file():  # again under the lock: another act sweep may have begun it meanwhile
        check_same(out, read_record(out), sweep, configs)
    else:
        write_text(out / RECORD, "# The sweep this folder holds, written by act sweep: a rerun of another sweep, or "
                                 "with other overrides,\n# is refused (data.root and pipeline.path may change).\n"
                                 + yaml.safe_dump(record_of(sweep, configs), sort_keys=False))
    (out / RUNS).mkdir(exist_ok=True)
    return lock
