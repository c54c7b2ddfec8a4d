"""The method registry: every fact about a method (`method.name`) beside its name.

A `MethodSpec` gives the phase each epoch trains (a key of act/engine.py's `LOSSES`, the loss
function of that phase), whether its steps read the strong view, whether it selects samples
(the summary then prints the selection's precision and recall), and how tables name it.
Config choices, the trainer, the console summary and `act report` read these facts here;
adding a method variant is one `register(...)` call plus its loss functions in engine.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class MethodSpec:
    name: str  # the value of method.name
    title: str  # its name in tables, e.g. "ACT", "Standard"
    phase: Callable[[int, int], str]  # (epoch, optim.warmup_epochs) -> the phase trained
    strong_view: Callable[[Any], bool]  # (the method config) -> whether its steps read the strong view
    selects: bool = False  # selects samples: the summary prints the selection's precision and recall
    ablations: bool = False  # method.ablation.* apply: tables name the ones switched off


METHODS: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method; its name becomes a choice of method.name."""
    METHODS[spec.name] = spec
    return spec


def method_names() -> tuple[str, ...]:
    return tuple(METHODS)


def spec_of(name: str) -> MethodSpec:
    return METHODS[name]


register(MethodSpec("act", "ACT", lambda epoch, warmup: "warmup" if epoch < warmup else "robust",
                    lambda method: method.ablation.consistency, selects=True, ablations=True))
register(MethodSpec("standard", "Standard", lambda epoch, warmup: "standard", lambda method: False))
