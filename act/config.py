"""Typed run configuration: dataclasses, YAML loading, dotted `key=value` overrides, validation.

Every YAML key maps one-to-one to a dataclass field below; there are no hidden defaults in
the code paths that use them. `load_config` is the one entry point: it starts from the
defaults (the embedded demo), applies a YAML file, then the overrides, then validates, and
raises `ActError` with one sentence naming the key and what is allowed.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from act.datasets import dataset_names, spec_of
from act.datasets.registry import openset_names
from act.errors import ActError
from act.method.lr import MAX_EPOCHS


@dataclass
class NoiseConfig:
    type: str = "symmetric"  # symmetric | asymmetric (synthetic) | human (CIFAR-N's labels: file, labels) | none
    closeset_ratio: float = 0.2  # synthetic noise only
    openset_ratio: float = 0.0
    seed: int = 0  # synthetic noise only
    file: str | None = None  # human: Wei et al.'s CIFAR-10_human.pt / CIFAR-100_human.pt, or the folder holding it
    labels: str | None = None  # human: the file's label set, e.g. worse_label (or the authors' short name: worst)


@dataclass
class DataConfig:
    name: str = "cifar100n"
    root: str | None = None
    image_size: int = 0  # 0: the data set's own size (32 for CIFAR, 448 for Web-*, ...)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    train_limit: int = 0  # use only the first N training samples (0: all)
    test_limit: int = 0  # use only the first N test samples (0: all)


@dataclass
class ModelConfig:
    name: str = "sevencnn"  # sevencnn | resnet32 | tinycnn | timm:<name> (the registry of act/models)
    pretrained: str | None = None  # a local weights file (nothing is downloaded) | none: no weights, on purpose
    num_outputs: int | None = None  # outputs of the head; unset: the data set's classes (Food-101N's public script: 200)


@dataclass
class AblationConfig:
    mining: bool = True  # ASM: mine (rtm_pred != y) & (ntm_pred == y) while the memorisation check allows
    reweight: bool = True  # DSRW: weight the selected loss by count / (epoch + 1)
    consistency: bool = True  # CR: cross-entropy of the strong view against the EMA pseudo-label


@dataclass
class MethodConfig:
    name: str = "act"  # act | standard (the registry of act/method/registry.py)
    tau: float = 0.025
    selection: str = "cifar"  # cifar | web
    ablation: AblationConfig = field(default_factory=AblationConfig)
    label_smoothing: float = 0.0
    fuse_views: bool = False  # one RTM forward over both views (changes batch-norm statistics)


@dataclass
class OptimConfig:
    batch_size: int = 128
    lr: float = 0.01  # the RTM's (robust net's) rate after warm-up
    lr1: float = 0.08  # the NTM's (normal net's) rate, as optim.ntm_lr_plan uses it
    warmup_lr: float = 0.01  # the RTM's rate in warm-up; the NTM's too when ntm_lr_plan is own or shared
    warmup_epochs: int = 50
    epochs: int = 150
    lr_decay: str = "cosine:20,5e-4,100"  # cosine:S,END,E | constant
    weight_decay: float = 5e-4
    momentum: float = 0.9
    nesterov: bool = True
    ntm_lr_plan: str = "own"  # own: the RTM's plan from lr1 | shared: from lr (public CIFAR) | constant | step:E,F (lr1; public Web/Food)


@dataclass
class PipelineConfig:
    name: str = "auto"  # auto (tensor for arrays; dali on CUDA for converted data; else reference) | the registry of pipelines/registry.py
    path: str | None = None  # a folder written by `act convert`; the data are read from it instead of data.root
    workers: int = -1  # loader worker processes; -1: one per CPU core, at most 8
    test_batch_size: int = 512
    views: str = "public"  # public (every pipeline) | a pipeline's named variant, e.g. dali-randaugment (faster, not the public views)


@dataclass
class RunConfig:
    out_dir: str = "runs"
    name: str | None = None  # run folder name; default <data>-<noise>-<method>-<time>
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto | bf16 | fp16 | off  (auto: bf16 on CUDA when supported, off on CPU)
    compile: str = "auto"  # auto | true | false  (auto: on CUDA only; CPU steps were slower compiled)
    compile_mode: str = "default"  # default | reduce-overhead | max-autotune (torch.compile modes)
    cuda_graph: str = "auto"  # auto | true | false  (auto: on CUDA; each full-batch step replays as one CUDA graph)
    progress: str = "auto"  # auto | true | false  (auto: a bar only when stdout is a terminal)
    threads: int = 0  # CPU threads for torch (0: torch's default)
    sync_bn: str = "auto"  # auto | true | false  (under torchrun: batch norm over the global batch; auto: on CUDA)
    dist_timeout: int = 600  # seconds a process of a torchrun run waits for the others before the run stops
    plots: str = "auto"  # auto | true | false  (curves.png at the end; auto: when matplotlib is installed)
    tensorboard: bool = False  # TensorBoard scalars of every epoch in <run folder>/tensorboard
    wandb: str = "off"  # off | online | offline  (Weights & Biases; offline: <run folder>/wandb, no network)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    run: RunConfig = field(default_factory=RunConfig)


# The defaults above are the paper's CIFAR-100N setting (ACT_SPEC.md). The embedded demo
# that `act train` runs without --config is a YAML file shipped inside the package.
DEMO_CONFIG = Path(__file__).with_name("demo.yaml")

# The allowed values of the keys with a fixed set. The keys naming a registered thing (data.name,
# method.name, pipeline.name, pipeline.views, model.name) take their choices from the registries
# (`all_choices`), read when validating so that one registered later counts.
CHOICES: dict[str, tuple[str, ...]] = {
    "data.noise.type": ("symmetric", "asymmetric", "human", "none"),
    "method.selection": ("cifar", "web"),
    "run.amp": ("auto", "bf16", "fp16", "off"),
    "run.compile": ("auto", "true", "false"),
    "run.cuda_graph": ("auto", "true", "false"),
    "run.compile_mode": ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
    "run.progress": ("auto", "true", "false"),
    "run.sync_bn": ("auto", "true", "false"),
    "run.plots": ("auto", "true", "false"),
    "run.wandb": ("off", "online", "offline"),
}


# The names the model and pipeline registries hold as act ships them (act/models/, pipelines/): both
# packages import torch, which takes seconds on a cluster's shared file system, so `act --help` and a
# config's validation read these instead (tests/test_no_torch.py checks they are the registries' own).
# A name registered at run time counts too (`registered`).
BUILT_IN: dict[str, tuple[str, ...]] = {
    "model.name": ("resnet32", "sevencnn", "tinycnn"),
    "pipeline.name": ("tensor", "reference", "dali", "ffcv"),
    "pipeline.views": ("public", "dali-randaugment", "ffcv-resized-crop"),
}
# Where each of those registries keeps its names: the module and its name table (or function).
REGISTRIES = {"model.name": ("act.models.registry", "MODELS"), "pipeline.name": ("pipelines.registry", "PIPELINES"),
              "pipeline.views": ("pipelines.registry", "view_names")}


MAX_SEED = 2**32 - 1
INT_MAX = 2**31 - 1  # the C int that torch, DataLoader and the collectives take counts and sizes as
# The range of every integer key, with why its top fits the machine: no value may take
# gigabytes (a learning-rate plan holds one rate per epoch; images are decoded at
# data.image_size) or overflow a C int before it is refused. Keys not listed: a C int.
INT_BOUNDS: dict[str, tuple[int, int, str]] = {
    "data.image_size": (0, 2048, "a batch of larger images takes gigabytes"),
    "data.noise.seed": (0, MAX_SEED, "numpy's seeds are 32-bit unsigned"),
    "optim.warmup_epochs": (0, MAX_EPOCHS, "the learning-rate plans hold one rate per epoch"),
    "optim.epochs": (1, MAX_EPOCHS, "the learning-rate plans hold one rate per epoch"),
    "optim.batch_size": (1, INT_MAX, "a C int"),
    "data.train_limit": (0, INT_MAX, "a C int"),
    "data.test_limit": (0, INT_MAX, "a C int"),
    "pipeline.test_batch_size": (1, INT_MAX, "a C int"),
    "pipeline.workers": (-1, 256, "each worker is a process"),
    "run.seed": (0, MAX_SEED, "numpy's seeds are 32-bit unsigned"),
    "run.threads": (0, 1024, "torch's thread pool"),
    "run.dist_timeout": (1, 7 * 24 * 3600, "seconds, a week; a C int of milliseconds overflows past 24 days"),
    "model.num_outputs": (2, 65536, "the head and the bank hold a column per output"),
}
MAX_NAME_BYTES = 255  # the folder-name limit of common file systems (ext4, XFS, APFS, NTFS)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file at `path` (the shipped demo when None), then `key=value`
    overrides in order; validated. Every value is read as written for its key's type."""
    return override(base_config(path), overrides)


def base_config(path: str | Path | None = None) -> Config:
    """The defaults with the YAML file at `path` (the shipped demo when None) applied; not validated."""
    cfg = Config()
    apply_dict(cfg, flatten(read_yaml(DEMO_CONFIG if path is None else path)))
    return cfg


def override(cfg: Config, overrides: list[str] | None) -> Config:
    """`cfg` with the `key=value` overrides applied in order, validated."""
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ActError(f"override {item!r} is not of the form key=value (e.g. optim.lr=0.02)")
        set_key(cfg, key.strip(), raw)
    validate(cfg)
    return cfg


def read_run_config(path: str | Path) -> Config:
    """A run folder's config.yaml, read as strictly and typed as `load_config` reads a config,
    over the defaults of keys added since it was written; not validated against the registries
    (a run of a data set registered elsewhere is still a run to report)."""
    cfg = Config()
    apply_dict(cfg, flatten(read_yaml(path)))
    return cfg


def read_yaml(path: str | Path) -> dict:
    """The YAML file as nested dicts whose leaves are the scalars' text, exactly as written.

    Text, not YAML 1.1's guesses: `1e-3` is not left a string, `0755` not made 493, `off`
    not made false; each leaf is then read for its key's declared type (`coerce`)."""
    path = Path(path)
    if not path.exists():
        raise ActError(f"config file {path} does not exist")
    if not path.is_file():
        raise ActError(f"config file {path} is not a regular file (a folder or a device?); name a YAML file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ActError(f"config file {path} is not UTF-8 text (saved as UTF-16, or not a text file?)") from exc
    except OSError as exc:
        raise ActError(f"config file {path} cannot be read: {exc.strerror or exc}") from exc
    import yaml

    try:
        data = yaml.load(text, Loader=strict_loader())
    except AmbiguousYaml as exc:
        raise ActError(f"config file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ActError(f"config file {path} is not valid YAML: {one_line(str(exc))}") from exc
    if data is None or data == "":
        return {}
    if not isinstance(data, dict):
        raise ActError(f"config file {path} must hold a mapping of sections (data:, model:, ...)")
    return data


class AmbiguousYaml(ValueError):
    """YAML that does not mean one thing: a key given twice, or an alias."""


def strict_loader():
    """BaseLoader (every scalar as its text) that refuses a key given twice in one mapping
    (YAML keeps the last silently) and aliases (`*name`: nested ones grow without bound). Built
    when a file is read: importing this module needs no YAML library."""
    import yaml

    class StrictLoader(yaml.BaseLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise AmbiguousYaml(f"line {mark.line + 1} uses an alias (*{self.peek_event().anchor}); "
                                    f"write the value out instead")
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        raise AmbiguousYaml(f"line {key_node.start_mark.line + 1} gives {key_node.value!r} a second "
                                            f"time at the same level; keep one")
                    seen.add(key_node.value)
            return super().construct_mapping(node, deep)

    return StrictLoader


def one_line(text: str) -> str:
    return " ".join(text.split())


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; leaves that are mappings of a dataclass section recurse."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def all_keys(obj: Any = None, prefix: str = "") -> list[str]:
    """Every dotted leaf key of the config, in declaration order."""
    obj = Config() if obj is None else obj
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += all_keys(value, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def apply_dict(cfg: Config, flat: dict[str, Any]) -> None:
    for key, value in flat.items():
        set_key(cfg, key, value)


def set_key(cfg: Config, key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = cfg
    for i, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(node)}
        if part not in fields:
            raise ActError(unknown_key_message(key))
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(node, part)):
                raise ActError(f"{key} is a section, not a value: set one of its keys, e.g. {key}.{dataclasses.fields(getattr(node, part))[0].name}=...")
            hints = typing.get_type_hints(type(node))
            setattr(node, part, coerce(key, value, hints[part]))
        else:
            node = getattr(node, part)
            if not dataclasses.is_dataclass(node):
                raise ActError(unknown_key_message(key))


def unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, all_keys(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else "; see `act train --help` for the keys"
    return f"unknown config key {key!r}{hint}"


NULL_TEXT = ("", "~", "null", "none")
# Keys to which `none` is a value, not "unset": model.pretrained=none trains from scratch on
# purpose where leaving it unset is refused (the Web/Food data sets, act/run/preflight.py check_weights).
NONE_IS_A_VALUE = ("model.pretrained",)
INT_TEXT = re.compile(r"[+-]?[0-9]+")
FLOAT_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def override_text(value) -> str:
    """A config value as an override writes it and `coerce` reads it back: null, true, false, 0.001."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def coerce(key: str, value: Any, hint: Any) -> Any:
    """The text `value` (from YAML or the command line) read as the field's declared type.

    A str key keeps the exact text; a bool key takes true or false; an int key an integer;
    a float key any decimal number (`0.01`, `1e-3`, `.5`, `2`); a key that may be None
    takes null, none, ~ or nothing (`none` stays a value for NONE_IS_A_VALUE's keys). Anything
    else is an ActError naming the key."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if not isinstance(value, str):
        shown = "a list" if isinstance(value, list) else repr(value)
        raise ActError(f"{key} must be a {type_name(allowed)}, got {shown}")
    text = value.strip()
    if type(None) in allowed and text.lower() in NULL_TEXT:
        return "none" if key in NONE_IS_A_VALUE and text.lower() == "none" else None
    kind = next(t for t in allowed if t is not type(None))
    if kind is str:
        return value
    if kind is bool and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if kind is int and INT_TEXT.fullmatch(text):
        return int(text)
    if kind is float and FLOAT_TEXT.fullmatch(text) and math.isfinite(float(text)):
        return float(text)
    examples = {bool: "true or false", int: "an integer, e.g. 3", float: "a float, e.g. 0.01 or 1e-3"}[kind]
    null = " (or null)" if type(None) in allowed else ""
    raise ActError(f"{key} must be {examples}{null}, got {value!r}")


def type_name(types_: tuple) -> str:
    names = [getattr(t, "__name__", str(t)) for t in types_ if t is not type(None)]
    return " or ".join(names)


def validate(cfg: Config) -> None:
    """Range and consistency checks; each failure names the key and what is allowed."""
    for key, choices in all_choices().items():
        value = get_key(cfg, key)
        if value not in choices:
            raise ActError(f"{key}={value!r} is not allowed; choose one of: {', '.join(choices)}")
    d, n, o, r = cfg.data, cfg.data.noise, cfg.optim, cfg.run
    spec = spec_of(d.name)
    if spec.needs_root and not d.root and not cfg.pipeline.path:
        raise ActError(f"data.root must name the folder or file of data set {d.name!r} (e.g. data.root=/data/{d.name})")
    if not 0.0 <= n.closeset_ratio < 1.0:
        raise ActError(f"data.noise.closeset_ratio={n.closeset_ratio} is outside [0, 1)")
    if not 0.0 <= n.openset_ratio < 1.0:
        raise ActError(f"data.noise.openset_ratio={n.openset_ratio} is outside [0, 1)")
    if n.openset_ratio > 0 and not spec.openset:
        raise ActError(
            f"data.noise.openset_ratio={n.openset_ratio} needs a data set with classes to spare "
            f"({', '.join(openset_names())}); {d.name} has none: set it to 0")
    if spec.openset and n.openset_ratio <= 0:
        raise ActError(f"data.noise.openset_ratio must be in (0, 1) for {d.name} (the paper uses 0.2)")
    closed = int(spec.label_space * (1 - n.openset_ratio))  # as act/method/noise.py counts the closed-set classes
    if spec.label_space and closed < 2:
        raise ActError(f"data.noise.openset_ratio={n.openset_ratio} leaves {closed} of {d.name}'s {spec.label_space} "
                       f"classes closed-set; at least 2 are needed")
    if n.type in ("symmetric", "asymmetric") and n.closeset_ratio <= 0 and n.openset_ratio <= 0:
        raise ActError("data.noise.closeset_ratio must be > 0 unless data.noise.type=none")
    check_human(cfg)
    check_int_bounds(cfg)
    for key in ("optim.lr", "optim.lr1", "optim.warmup_lr", "optim.weight_decay", "optim.momentum", "method.tau"):
        if get_key(cfg, key) < 0:
            raise ActError(f"{key}={get_key(cfg, key)} must be >= 0")
    if not 0.0 <= cfg.method.label_smoothing < 1.0:
        raise ActError(f"method.label_smoothing={cfg.method.label_smoothing} is outside [0, 1)")
    if o.nesterov and o.momentum <= 0:
        raise ActError("optim.nesterov=true needs optim.momentum > 0")
    if r.device not in ("auto", "cpu", "cuda") and not r.device.startswith("cuda:"):
        raise ActError(f"run.device={r.device!r} is not allowed; choose auto, cpu, cuda or cuda:N")
    if r.name is not None:
        check_run_name(r.name)
    from act.method.lr import (  # validate optim.lr_decay and optim.ntm_lr_plan with the plans' own parsers
        parse_decay,
        parse_ntm_plan,
    )

    parse_decay(o.lr_decay)
    parse_ntm_plan(o.ntm_lr_plan)
    models = registered("model.name")
    if not (cfg.model.name.startswith("timm:") or cfg.model.name in models):
        raise ActError(f"model.name={cfg.model.name!r} is not allowed; choose {', '.join(sorted(models))} or "
                       f"timm:<name>")


def check_human(cfg: Config) -> None:
    """data.noise.file and data.noise.labels are read with data.noise.type=human alone, and it needs a
    label set, kept as the file's key (the authors' short names, e.g. worst, name one). The file is
    asked for where the data are read, as data.root's data are (a shipped config leaves both unset)."""
    n = cfg.data.noise
    if n.type != "human":
        given = [key for key in ("file", "labels") if getattr(n, key) is not None]
        if given:
            raise ActError(f"data.noise.{given[0]} is read only with data.noise.type=human (CIFAR-N's human labels); "
                           f"set data.noise.type=human or remove it")
        return
    from act.datasets.human import label_key

    n.labels = label_key(cfg.data.name, n.labels)
    drawn = [f"{key}={getattr(n, key)}" for key in ("closeset_ratio", "openset_ratio", "seed") if getattr(n, key)]
    if drawn:  # the file's labels are the noise: a rate or a noise seed would be silently unused
        raise ActError(f"data.noise.{drawn[0]} is read only with synthetic noise; with data.noise.type=human the "
                       f"label file is the noise: set data.noise.{drawn[0].split('=')[0]}=0")


def check_int_bounds(cfg: Config) -> None:
    """Every integer key within INT_BOUNDS (a C int where it names none); one line naming the bound."""
    for key in all_keys(cfg):
        value = get_key(cfg, key)
        if type(value) is not int:
            continue
        low, high, why = INT_BOUNDS.get(key, (-INT_MAX - 1, INT_MAX, "a C int"))
        if value < low:
            raise ActError(f"{key}={value} must be >= {low}")
        if value > high:
            raise ActError(f"{key}={value} must be <= {high} ({why})")


def all_choices() -> dict[str, tuple[str, ...]]:
    """CHOICES with those of the registries: the data sets, methods and pipelines registered now."""
    from act.method.registry import method_names

    return {"data.name": dataset_names(), "method.name": method_names(),
            "pipeline.name": ("auto", *registered("pipeline.name")), "pipeline.views": registered("pipeline.views"),
            **CHOICES}


def registered(key: str) -> tuple[str, ...]:
    """The names BUILT_IN gives `key`, then any other its registry holds. A name registered at run time
    (a plugin, a test's toy) was registered through the registry's module, so where that module
    is not imported there is none to add, and nothing imports torch to find out."""
    module, table = REGISTRIES[key]
    loaded = sys.modules.get(module)
    names = getattr(loaded, table, ())
    return tuple(dict.fromkeys([*BUILT_IN[key], *(names() if callable(names) else names)]))


def check_run_name(name: str) -> None:
    """run.name becomes one folder name under run.out_dir, so it must be a valid one."""
    if name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ActError(f"run.name={name!r} must be one folder name (no '/', '\\', '.' or '..'); "
                       "put the parent folders in run.out_dir")
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > MAX_NAME_BYTES:
        raise ActError(f"run.name is {size} bytes long; a folder name may hold at most {MAX_NAME_BYTES}")


def get_key(cfg: Config, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


# Keys that may change when a run is resumed (`act train --resume DIR key=value`); any other
# would change the experiment. run.threads may, to match the thread count the run trained with:
# the count in effect is what must not change (act/run/checkpoint.py `check_threads`).
RESUME_OVERRIDABLE = ("optim.epochs", "run.device", "run.progress", "pipeline.workers", "pipeline.test_batch_size",
                      "run.plots", "run.tensorboard", "run.wandb", "run.dist_timeout",
                      "run.threads")
# Where the data lie: moved data may be resumed from their new place, since the data fingerprint
# (act/run/checkpoint.py) compares what the run reads (the human labels among the noisy labels it hashes).
DATA_PLACES = ("data.root", "pipeline.path", "data.noise.file")


def experiment(cfg: Config) -> dict[str, Any]:
    """The keys that make a run the experiment it is, dotted: all but RESUME_OVERRIDABLE and DATA_PLACES."""
    return {key: value for key, value in flatten(to_dict(cfg)).items() if key not in RESUME_OVERRIDABLE + DATA_PLACES}


def dump_yaml(cfg: Config) -> str:
    import yaml

    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


# What a key does where its name cannot say it, in `act train --help`. The learning-rate keys
# keep the public scripts' names (lr, lr1); the nets they drive are named here.
KEY_HELP = {
    "optim.lr": "the RTM's rate after warm-up",
    "optim.lr1": "the NTM's rate (read as optim.ntm_lr_plan says)",
    "optim.warmup_lr": "the RTM's rate in warm-up (and the NTM's with ntm_lr_plan own or shared)",
    "optim.ntm_lr_plan": "own: the RTM's plan from lr1 | shared: the RTM's plan | constant | step:E,F",
    "data.name": "cifar10n, cifar100n: CIFAR-10/100 under synthetic noise (the ACT paper's CIFAR100N) or, with "
                 "data.noise.type=human, Wei et al.'s human labels (CIFAR-10N, CIFAR-100N)",
    "data.noise.type": "symmetric, asymmetric: synthetic noise at closeset_ratio | human: a label set of "
                       "data.noise.file (Wei et al.'s CIFAR-N) | none",
    "data.noise.file": "human: CIFAR-10_human.pt or CIFAR-100_human.pt, or the folder holding it",
    "data.noise.labels": "human: aggre_label, worse_label, random_label1-3 (CIFAR-10N); noisy_label, "
                         "noisy_coarse_label (CIFAR-100N); or aggre, worst, rand1-3, noisy100",
}


def describe_keys() -> str:
    """One line per key with its default (the paper's CIFAR-100N setting) and, where the embedded demo
    (`act train` without --config) sets another, the demo's; for `act train --help`."""
    default, demo = Config(), base_config()
    choices = {**all_choices(), "model.name": (*registered("model.name"), "timm:<name>")}
    lines = []
    for key in all_keys(default):
        value, in_demo = get_key(default, key), get_key(demo, key)
        differs = f" [demo: {in_demo!r}]" if in_demo != value else ""
        extra = f"  ({' | '.join(choices[key])})" if key in choices else ""
        said = f"  {KEY_HELP[key]}" if key in KEY_HELP else ""
        lines.append(f"  {key} = {value!r}{differs}{extra}{said}")
    return "\n".join(lines)
