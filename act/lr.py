"""The per-epoch learning-rate plan of ACT_SPEC.md ("Learning-rate plan")."""
from __future__ import annotations

import math

from act.errors import ActError


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
