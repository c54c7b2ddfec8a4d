"""How a run's experiment is named in tables and figure titles: its setting (data set, noise) and its
method, with the ablations switched off. `act report` names its rows and columns so, and a run
titles its curves (curves.png) so."""
from __future__ import annotations

from act.datasets.registry import title as data_title
from act.method.registry import METHODS

NOISE_NAMES = {"symmetric": "Sym", "asymmetric": "Asym"}
ABLATIONS = (("mining", "ASM"), ("reweight", "DSRW"), ("consistency", "CR"))


def setting_of(cfg: dict) -> tuple:
    kind = cfg["data.noise.type"]
    ratio = 0.0 if kind == "none" else round(float(cfg["data.noise.closeset_ratio"]), 4)
    return cfg["data.name"], kind, ratio, round(float(cfg["data.noise.openset_ratio"]), 4)


def setting_label(setting: tuple) -> str:
    name, kind, ratio, openset = setting
    text = data_title(name)
    if kind != "none":
        text += f" {NOISE_NAMES.get(kind, kind)}-{ratio * 100:g}"
    if openset and not (name == "cifar80n" and openset == 0.2):  # CIFAR80N's 20% open set is the paper's
        text += f" open-{openset * 100:g}"
    return text


def method_label(cfg: dict) -> str:
    spec = METHODS.get(cfg["method.name"])
    if spec is None or not spec.ablations:
        return spec.title if spec else cfg["method.name"].capitalize()
    off = [name for key, name in ABLATIONS if not cfg[f"method.ablation.{key}"]]
    return "ACT" + (f" w/o {', '.join(off)}" if off else "")


def group_title(cfg: dict) -> str:
    """How one run's experiment is named in tables and figure titles, e.g. "CIFAR100N Sym-20, ACT"."""
    return f"{setting_label(setting_of(cfg))}, {method_label(cfg)}"
