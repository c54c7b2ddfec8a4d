"""Which runs may share a packed step: the contract `act sweep --pack` groups cells by and the
pack's trainer checks again.

Runs in one pack share the data set, model, batch size, epochs and phase plan, method switches
and learning-rate plans (one fused SGD drives them all), and how they run (device, AMP,
pipeline); their seeds and close-set noise settings may differ (CIFAR-N's human label sets among
them, where all have as many classes), and each keeps its own folder.
The open-set ratio is shared: it decides CIFAR-80N's classes and test set, which the pack's
evaluation reads once for all runs.
"""
from __future__ import annotations

import json

from act.config import Config, flatten, to_dict
from act.datasets.human import is_coarse

PACKABLE_MODELS = ("sevencnn", "resnet32", "tinycnn")  # act/pack/models.py has their grouped twins
# Keys in which the runs of one pack may differ: each run's own.
OWN = ("run.seed", "run.name", "run.out_dir", "data.noise.type", "data.noise.closeset_ratio", "data.noise.seed",
       "data.noise.file", "data.noise.labels")


def why_alone(cfg: Config, machine: bool = False) -> str | None:
    """Why a run cannot join a pack (one line), or None when it may. `machine`: also as this
    machine resolves the config (run.amp=auto is fp16 with loss scaling on a GPU without bf16)."""
    if cfg.model.name not in PACKABLE_MODELS:
        return f"model.name={cfg.model.name} has no grouped twin (packs: {', '.join(PACKABLE_MODELS)})"
    if cfg.run.amp == "fp16":
        return "run.amp=fp16: its loss scaling reads the scale on the host, per run"
    if machine and cfg.run.amp == "auto" and fp16_here(cfg):
        return ("run.amp=auto is fp16 with loss scaling on this GPU (no bf16), which reads the scale on the host "
                "per run; give run.amp=off to pack")
    from act.method.registry import spec_of  # here: the registries import torch
    from act.pack.step import packed_losses

    if packed_losses(spec_of(cfg.method.name).losses) is None:
        return f"method.name={cfg.method.name} has a loss function of its own, which has no packed form"
    return None


def fp16_here(cfg: Config) -> bool:
    from act.errors import ActError
    from act.run import runtime

    try:
        return runtime.decide(cfg).grad_scaler
    except ActError:  # refused on this machine for another reason, said where the run starts
        return False


def shared(cfg: Config) -> dict:
    """The keys the runs of a pack share: all but a run's own, and whether its labels are CIFAR-100's
    20 superclasses (a CIFAR-N coarse label set), which sets the classes every run's net predicts."""
    keys = {key: value for key, value in flatten(to_dict(cfg)).items() if key not in OWN}
    return {**keys, "superclasses": cfg.data.noise.type == "human" and is_coarse(cfg.data.noise.labels)}


def pack_key(cfg: Config) -> str:
    """Equal for the configs whose runs may share a step (all keys but a run's own, as JSON)."""
    return json.dumps(shared(cfg), sort_keys=True, default=str)


def first_difference(a: Config, b: Config) -> str | None:
    """The first shared key in which two configs differ, as `key: a vs b`, or None."""
    fa, fb = shared(a), shared(b)
    for key in sorted(fa):
        if fa[key] != fb.get(key):
            return f"{key}: {fa[key]!r} vs {fb.get(key)!r}"
    return None
