"""Weights from a local file (.pth/.pt/.bin or .safetensors), read without running its code: nothing
is ever downloaded."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from act.errors import ActError
from act.inputs import check_weights_file


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """A state dict from a local .pth/.pt/.bin (optionally under 'state_dict' or 'model') or .safetensors."""
    file = check_weights_file(path)
    load = safetensors_loader(path) if file.suffix == ".safetensors" else load_pickled
    try:
        state = load(str(file))
    except Exception as exc:
        raise ActError(f"model.pretrained={path} cannot be read as weights: {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ActError(f"model.pretrained={path} holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_pickled(file: str) -> object:
    # weights_only: a weights file is data; never run the pickled code of a file from elsewhere.
    return torch.load(file, map_location="cpu", weights_only=True)


def safetensors_loader(path: str) -> Callable[[str], dict[str, torch.Tensor]]:
    try:
        from safetensors.torch import load_file
    except ImportError as exc:
        raise ActError(f"model.pretrained={path} is a .safetensors file, which needs: pip install safetensors") from exc
    return load_file


def load_weights(model: nn.Module, path: str, strict: bool) -> None:
    """Load a local state dict into `model`; a mismatch is an ActError naming the file and the first problem."""
    try:
        model.load_state_dict(read_state_dict(path), strict=strict)
    except RuntimeError as exc:
        # torch's first line only names the class; the next one says what does not fit.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise ActError(f"model.pretrained={path} does not fit the model: {shorten(detail, 300)}") from exc


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
