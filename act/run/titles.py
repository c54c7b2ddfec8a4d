"""How a run's experiment is named in tables and figure titles: its setting (data set, noise) and its
method, with the ablations switched off. `act report` names its rows and columns so, and a run
titles its curves (curves.png) so.

Noise has one spelling everywhere (`noise_tag`): a run folder's default name
(cifar100n-sym20-act-20261124-120000, cifar10n-human-worst-act-...), a sweep's cell names
(act/sweep/spec.py) and the report's labels ("CIFAR100N (synthetic) sym20, ACT"). The ACT paper's
CIFAR100N/CIFAR80N carry synthetic noise, Wei et al.'s CIFAR-10N/CIFAR-100N human labels: a title
says which ("CIFAR-10N (human, worse_label), ACT"). Names are only written, never parsed back: a
folder named in an earlier spelling (symm20) reads as any other.
"""
from __future__ import annotations

from act.datasets import human
from act.datasets.registry import title as data_title
from act.method.registry import METHODS

NOISE_TAGS = {"symmetric": "sym", "asymmetric": "asym"}  # data.noise.type -> its tag's stem
HUMAN = "human"  # data.noise.type of CIFAR-N's human labels (act/datasets/human.py)
# The ACT paper's names shared with Wei et al.'s human-labelled CIFAR-N: titled "(synthetic)" where noise is drawn.
SYNTHETIC_N = ("cifar10n", "cifar100n", "cifar80n")
ABLATIONS = (("mining", "ASM"), ("reweight", "DSRW"), ("consistency", "CR"))


def setting_of(cfg: dict) -> tuple:
    """(data set, noise type, close-set ratio, open-set ratio); CIFAR-N's human labels are a label set,
    not a rate: their type is "human:<label set>" (e.g. human:worse_label), their ratios 0."""
    kind = cfg["data.noise.type"]
    if kind == HUMAN:
        return cfg["data.name"], f"{HUMAN}:{cfg.get('data.noise.labels')}", 0.0, 0.0
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
    elif kind == HUMAN:  # a label set, not a rate: human-worst, human-aggre, human-noisy, ...
        return f"{HUMAN}-{human.TAGS.get(noise.get('labels'), noise.get('labels'))}"
    else:
        tag = f"{NOISE_TAGS.get(kind, kind)}{percent(noise['closeset_ratio'])}"
    openset = float(noise.get("openset_ratio") or 0)
    return f"{tag}-open{percent(openset)}" if openset else tag


def setting_label(setting: tuple) -> str:
    """"CIFAR100N (synthetic) sym20": the data set and its noise tag; without a tag where no noise is
    added (data.noise.type=none: a web data set's own labels, noisy as they come) and CIFAR80N's 20%
    open set, which is the paper's, unnamed. CIFAR-N's human labels: "CIFAR-10N (human, worse_label)"."""
    name, kind, ratio, openset = setting
    if kind.startswith(f"{HUMAN}:"):
        return f"{human.TITLES.get(name, data_title(name))} (human, {kind.partition(':')[2]})"
    if name == "cifar80n" and openset == 0.2:
        openset = 0.0
    if kind == "none" and not openset:
        return data_title(name)
    synthetic = " (synthetic)" if name in SYNTHETIC_N else ""
    return f"{data_title(name)}{synthetic} {noise_tag({'type': kind, 'closeset_ratio': ratio, 'openset_ratio': openset})}"


def method_label(cfg: dict) -> str:
    spec = METHODS.get(cfg["method.name"])
    if spec is None or not spec.ablations:
        return spec.title if spec else cfg["method.name"].capitalize()
    off = [name for key, name in ABLATIONS if not cfg[f"method.ablation.{key}"]]
    return "ACT" + (f" w/o {', '.join(off)}" if off else "")


def group_title(cfg: dict) -> str:
    """How one run's experiment is named in tables and figure titles, e.g. "CIFAR100N (synthetic) sym20, ACT"."""
    return f"{setting_label(setting_of(cfg))}, {method_label(cfg)}"
