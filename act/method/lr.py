"""The per-epoch learning-rate plan of ACT_SPEC.md ("Learning-rate plan")."""
from __future__ import annotations

import math

from act.errors import ActError

MAX_EPOCHS = 100_000  # a plan holds one rate per epoch: every epoch a plan names stays below this


def parse_decay(decay: str) -> tuple[str, int, float, int]:
    """'cosine:S,END,E' -> ('cosine', S, END, E); 'constant' -> ('constant', 0, 0.0, 0)."""
    if decay == "constant":
        return ("constant", 0, 0.0, 0)
    kind, _, args = decay.partition(":")
    parts = args.split(",")
    if kind != "cosine" or len(parts) != 3:
        raise ActError(f"optim.lr_decay={decay!r} must be 'cosine:S,END,E' (e.g. cosine:20,5e-4,100) or 'constant'")
    try:
        start, end, stop = int(parts[0]), float(parts[1]), int(parts[2])
    except ValueError as exc:
        raise ActError(f"optim.lr_decay={decay!r}: S and E must be integers and END a number") from exc
    if stop <= start or start < 0 or not 0 <= end < math.inf:  # also refuses nan
        raise ActError(f"optim.lr_decay={decay!r} needs 0 <= S < E and a finite END >= 0")
    if stop > MAX_EPOCHS:
        raise ActError(f"optim.lr_decay={decay!r}: E must be <= {MAX_EPOCHS} (the plan holds one rate per epoch)")
    return ("cosine", start, end, stop)


def build_lr_plan(lr: float, epochs: int, warmup_epochs: int, warmup_lr: float, decay: str) -> list[float]:
    """One learning rate per epoch.

    `warmup_lr` for `warmup_epochs`; then, for `cosine:S,END,E`, a constant `lr` segment of
    `S - warmup_epochs` epochs only when that is positive, the cosine from `lr` to END over
    `E - S` epochs, and the last value held to the end. `constant` holds `lr` after warm-up.
    """
    kind, start, end, stop = parse_decay(decay)
    plan = [warmup_lr] * warmup_epochs
    if kind == "cosine":
        plan += [lr] * max(0, start - warmup_epochs)
        span = stop - start
        plan += [(lr - end) * 0.5 * (1 + math.cos(math.pi * i / span)) + end for i in range(span)]
    else:
        plan.append(lr)
    plan += [plan[-1]] * max(0, epochs - len(plan))
    return plan[:epochs]


def parse_ntm_plan(plan: str) -> tuple[str, int, float]:
    """optim.ntm_lr_plan: 'own' | 'shared' | 'constant' -> (kind, 0, 1.0); 'step:E,F' -> ('step', E, F)."""
    if plan in ("own", "shared", "constant"):
        return (plan, 0, 1.0)
    kind, _, args = plan.partition(":")
    parts = args.split(",")
    try:
        epoch, factor = int(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        epoch, factor = -1, math.nan
    if kind != "step" or len(parts) != 2 or not 0 <= epoch <= MAX_EPOCHS or not 0 <= factor < math.inf:
        raise ActError(f"optim.ntm_lr_plan={plan!r} must be own, shared, constant or 'step:E,F' "
                       f"(e.g. step:60,0.1: lr1, times F from epoch E on)")
    return ("step", epoch, factor)


def build_ntm_plan(plan: str, lr: float, lr1: float, epochs: int, warmup_epochs: int, warmup_lr: float,
                   decay: str) -> list[float]:
    """The NTM's learning rate per epoch (optim.ntm_lr_plan).

    own: the RTM's plan built from lr1; shared: the RTM's plan itself (the public CIFAR script);
    constant and step:E,F: the public Web/Food scripts' plan for the normal network, lr1 from
    epoch 0 (no warm-up rate), times F from epoch E on (Web: step:60,0.1; Food: constant)."""
    kind, step_epoch, factor = parse_ntm_plan(plan)
    if kind in ("own", "shared"):
        return build_lr_plan(lr1 if kind == "own" else lr, epochs, warmup_epochs, warmup_lr, decay)
    return [lr1 * factor if kind == "step" and epoch >= step_epoch else lr1 for epoch in range(epochs)]
