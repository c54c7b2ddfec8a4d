"""What runs need from the disk, checked before anything is built or created: the data set at
data.root (or the conversion at pipeline.path), CIFAR-N's human label file at data.noise.file and
the weights file of model.pretrained.

`act train --print-config` and `act sweep` (before any cell launches, `--dry-run` too) check each
distinct data root, label file and weights file once, by the checks their readers make first (a data
set's `locate`, act/datasets/human.py `label_file`, act/inputs.py `check_weights_file`): they read no
data and load no weights (and `act train --print-config` imports no torch), so a table of 30 runs with a wrong data.root is refused in
a second, with every problem named, instead of 30 processes failing one by one.
"""
from __future__ import annotations

from typing import Callable

from act.config import Config, flatten, to_dict
from act.datasets.converted import read_manifest
from act.datasets.human import label_file
from act.datasets.registry import spec_of
from act.errors import ActError
from act.inputs import NO_WEIGHTS, check_weights_file

SHOWN_CELLS = 3  # cells named on a problem's line before "and N more"


def check_weights(cfg: Config) -> None:
    """Refuse a new run of a data set the paper trains from pretrained weights when model.pretrained
    is unset: it would train from scratch, look normal and reach far less."""
    weights = spec_of(cfg.data.name).weights
    if weights and cfg.model.pretrained is None:
        raise ActError(f"model.pretrained is unset, but the paper's {cfg.data.name} runs start from {weights}: "
                       f"give model.pretrained=<that local file>, or model.pretrained={NO_WEIGHTS} to train from "
                       f"scratch on purpose")


def checks(cfg: Config) -> dict[tuple, tuple[str, Callable[[], object]]]:
    """What a run of `cfg` reads from the disk before its first epoch: key -> (what it is, its check).
    Runs reading the same data or weights share the key, so each is checked once."""
    d, p, spec = cfg.data, cfg.model.pretrained, spec_of(cfg.data.name)
    found = {("unset weights", d.name, p): ("", lambda: check_weights(cfg))}
    if cfg.pipeline.path:
        found[("pipeline.path", cfg.pipeline.path)] = (f"pipeline.path={cfg.pipeline.path}",
                                                       lambda: read_manifest(cfg.pipeline.path))
    elif spec.locate and spec.needs_root:
        found[("data.root", d.name, d.root)] = (f"data.root={d.root} ({d.name})", lambda: spec.locate(d.root))
    if d.noise.type == "human":  # read beside the data, from data.root and pipeline.path alike
        found[("data.noise.file", d.name, d.noise.file)] = (f"data.noise.file={d.noise.file}",
                                                            lambda: label_file(d.noise.file, d.name))
    if p is not None and p != NO_WEIGHTS:
        found[("model.pretrained", p)] = (f"model.pretrained={p}", lambda: check_weights_file(p))
    return found


def preflight(configs: dict[str, Config]) -> list[str]:
    """What the runs `configs` (name -> config; a sweep's cells, or one run under the name "") read,
    each distinct thing checked once: the lines of what was found (data roots, weights files).
    Every problem is found before any is told: one ActError, a line per problem naming the cells it
    stops."""
    found: dict[tuple, tuple[str, Callable[[], object]]] = {}
    users: dict[tuple, list[str]] = {}
    for name, cfg in configs.items():
        for key, check in checks(cfg).items():
            found.setdefault(key, check)
            users.setdefault(key, []).append(name)
    problems: dict[str, list[str]] = {}  # one line -> the runs it stops (cifar100n and cifar80n share a root)
    seen = []
    for key, (what, check) in found.items():
        try:
            check()
        except ActError as exc:
            problems.setdefault(str(exc), []).extend(users[key])
            continue
        if what:
            seen.append(what)
    if problems:
        raise ActError("\n".join(f"{problem}{cells_of(names)}" for problem, names in problems.items()))
    return seen


def cells_of(names: list[str]) -> str:
    """' (cells a, b, c and 27 more)' naming the sweep cells a problem stops; '' for one run."""
    names = [name for name in names if name]
    if not names:
        return ""
    more = f" and {len(names) - SHOWN_CELLS} more" if len(names) > SHOWN_CELLS else ""
    return f" (cell{'s' if len(names) > 1 else ''} {', '.join(names[:SHOWN_CELLS])}{more})"


def verdict(seen: list[str]) -> str:
    """The line that says what the preflight found in place."""
    return "preflight: ok" + (f": found {', '.join(seen)}" if seen else " (nothing to read from the disk)")


def show_cells(configs: dict[str, Config]) -> str:
    """`act sweep --dry-run`: the resolved config of every cell, as YAML a reader takes in at a glance
    (the 30 cells of Table 1 on one screen): `shared`, the config every cell has, then under `cells`
    each cell's own keys. Each cell trains in run.out_dir/<its name> (run.name)."""
    import yaml

    flat = {name: flatten(to_dict(cfg)) for name, cfg in configs.items()}
    first = next(iter(flat.values()))
    own = {key for values in flat.values() for key, value in values.items() if value != first[key]} | {"run.name"}
    shared = to_dict(next(iter(configs.values())))
    for key in own:
        *path, leaf = key.split(".")
        section = shared
        for part in path:
            section = section[part]
        del section[leaf]
    cells = {name: {key: value for key, value in values.items() if key in own - {"run.name"}}
             for name, values in flat.items()}
    return (f"# {len(configs)} cells; each trains in run.out_dir/<cell>\n"
            + yaml.safe_dump({"shared": shared}, sort_keys=False)
            + yaml.safe_dump({"cells": cells}, sort_keys=False, default_flow_style=None, width=10**6))
