"""Safe checkpoint loading: ``torch.load(weights_only=True)`` and messages that say what differs."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from efficientbioai.errors import InputError

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")


def save_checkpoint(data: dict, path: str | Path) -> Path:
    """``torch.save`` under a temporary name, then rename: an interrupted save never leaves a
    truncated checkpoint under the real name. ``data`` holds tensors and plain values only, so
    :func:`read_state_dict` loads it with ``weights_only=True``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    torch.save(data, tmp)
    os.replace(tmp, path)
    return path


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state_dict (or a dict wrapping one under a usual key) without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(
            f"{path}: cannot load as a weights-only checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300]}). Save it with torch.save(model.state_dict(), path)."
        ) from None
    if isinstance(data, dict):
        for key in _WRAPPER_KEYS:
            if key in data and isinstance(data[key], dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise InputError(f"{path}: does not hold a state_dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in data.items()}


def load_state_dict(model: nn.Module, path: str | Path) -> nn.Module:
    """Load ``path`` into ``model``, raising :class:`InputError` that lists what does not match."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} of other shape (e.g. {'; '.join(shapes[:3])})")
        raise InputError(
            f"{path}: checkpoint does not match the architecture in the config: "
            + "; ".join(parts)
            + ". Check model.params (channels, dims, in/out channels) against how it was trained."
        )
    model.load_state_dict(state)
    return model
