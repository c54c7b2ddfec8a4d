"""The method registry: every fact about a method (`method.name`) beside its name.

A `MethodSpec` gives the loss function of each of its phases (act/step/engine.py's `*_losses`, or
one of its own with the same signature), the phase each epoch trains, whether its steps read
the strong view, whether it selects samples (the summary then prints the selection's
precision and recall), and how tables name it. Config choices, the trainer (one step per
phase), the console summary and `act report` read these facts here; adding a method variant
is one `register(...)` call (tests/test_registry.py adds a toy one with a loss of its own).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from act.errors import ActError

# (ctx, batch, statistics vector) -> the step's summed loss; see act/step/engine.py `warmup_losses`.
Losses = Callable[[Any, Any, Any], Any]


class EngineLosses(Mapping):
    """phase -> a loss function of act/step/engine.py, named here and imported when first read: the
    registry's names and titles (`act --help`, `act report`) are read without importing torch."""

    def __init__(self, **names: str) -> None:
        self.names = names

    def __getitem__(self, phase: str) -> Losses:
        from act.step import engine

        return getattr(engine, self.names[phase])

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class MethodSpec:
    name: str  # the value of method.name
    title: str  # its name in tables, e.g. "ACT", "Standard"
    losses: Mapping[str, Losses]  # phase -> its loss function; each phase gets its own compiled/captured step
    phase: Callable[[int, int], str]  # (epoch, optim.warmup_epochs) -> the phase trained, a key of `losses`
    strong_view: Callable[[Any], bool]  # (the method config) -> whether its steps read the strong view
    selects: bool = False  # selects samples: the summary prints the selection's precision and recall
    ablations: bool = False  # method.ablation.* apply: tables name the ones switched off
    # The phases whose loss reads the strong view (None: every phase); the pipeline builds it
    # in their epochs only. ACT's warm-up reads the weak view alone.
    strong_phases: tuple[str, ...] | None = None

    def reads_strong(self, method: Any, phase: str) -> bool:
        """Whether epochs of `phase` need the strong view under the method config `method`."""
        return self.strong_view(method) and (self.strong_phases is None or phase in self.strong_phases)


METHODS: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method; its name becomes a choice of method.name."""
    METHODS[spec.name] = spec
    return spec


def method_names() -> tuple[str, ...]:
    return tuple(METHODS)


def spec_of(name: str) -> MethodSpec:
    if name not in METHODS:
        raise ActError(f"method.name={name!r} is not a known method; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def phase_losses() -> dict[str, Losses]:
    """Every phase of the registered methods -> its loss function (benchmarks and tests)."""
    return {phase: fn for spec in METHODS.values() for phase, fn in spec.losses.items()}


register(MethodSpec("act", "ACT", EngineLosses(warmup="warmup_losses", robust="robust_losses"),
                    lambda epoch, warmup: "warmup" if epoch < warmup else "robust",
                    lambda method: method.ablation.consistency, selects=True, ablations=True,
                    strong_phases=("robust",)))
register(MethodSpec("standard", "Standard", EngineLosses(standard="standard_losses"), lambda epoch, warmup: "standard",
                    lambda method: False))
