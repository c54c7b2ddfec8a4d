"""How a run's experiment is named in tables and figure titles: its setting (data set, noise) and its
method, with the ablations switched off. `act report` names its rows and columns so, and a run
titles its curves (curves.png) so.

Noise has one spelling everywhere (`noise_tag`): a run folder's default name
(cifar100n-sym20-act-20261124-120000), a sweep's cell names (act/sweep/spec.py) and the report's
labels ("CIFAR100N sym20, ACT"). Names are only written, never parsed back: a folder named in
an earlier spelling (symm20) reads as any other.
"""
from __future__ import annotations

from act.datasets.registry import title as data_title
from act.method.registry import METHODS

NOISE_TAGS = {"symmetric": "sym", "asymmetric": "asym"}  # data.noise.type -> its tag's stem
ABLATIONS = (("mining", "ASM"), ("reweight", "DSRW"), ("consistency", "CR"))


def setting_of(cfg: dict) -> tuple:
    kind = cfg["data.noise.type"]
    ratio = 0.0 if kind == "none" else round(float(cfg["data.noise.closeset_ratio"]), 4)
    return cfg["data.name"], kind, ratio, round(float(cfg["data.noise.openset_ratio"]), 4)


def percent(ratio: float) -> str:
    return f"{round(float(ratio), 4) * 100:g}"


def noise_tag(noise: dict) -> str:
    """The noise of a data.noise section ({"type", "closeset_ratio", "openset_ratio", ...}) in one
    word: "sym20", "asym40", "clean", with "-open20" where part of the training set is open-set
    noise. Distinct noise keys give distinct tags (a ratio to 0.01%)."""
    kind = noise["type"]
    if kind == "none":
        tag = "clean"
    else:  # a noise type that is a label set rather than a rate (CIFAR-N's human labels) is tagged here
        tag = f"{NOISE_TAGS.get(kind, kind)}{percent(noise['closeset_ratio'])}"
    openset = float(noise.get("openset_ratio") or 0)
    return f"{tag}-open{percent(openset)}" if openset else tag


def setting_label(setting: tuple) -> str:
    """"CIFAR100N sym20": the data set and its noise tag; without a tag where no noise is added
    (data.noise.type=none: a web data set's own labels, noisy as they come) and CIFAR80N's 20%
    open set, which is the paper's, unnamed."""
    name, kind, ratio, openset = setting
    if name == "cifar80n" and openset == 0.2:
        openset = 0.0
    if kind == "none" and not openset:
        return data_title(name)
    return f"{data_title(name)} {noise_tag({'type': kind, 'closeset_ratio': ratio, 'openset_ratio': openset})}"


def method_label(cfg: dict) -> str:
    spec = METHODS.get(cfg["method.name"])
    if spec is None or not spec.ablations:
        return spec.title if spec else cfg["method.name"].capitalize()
    off = [name for key, name in ABLATIONS if not cfg[f"method.ablation.{key}"]]
    return "ACT" + (f" w/o {', '.join(off)}" if off else "")


def group_title(cfg: dict) -> str:
    """How one run's experiment is named in tables and figure titles, e.g. "CIFAR100N sym20, ACT"."""
    return f"{setting_label(setting_of(cfg))}, {method_label(cfg)}"
