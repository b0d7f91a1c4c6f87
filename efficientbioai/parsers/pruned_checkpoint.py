"""Save and load a pruned model without pickling code.

A pruned network no longer matches the architecture its parser builds, and ``torch.save`` of
the whole module would need an unsafe ``torch.load``. Instead the file holds the state_dict
plus, for every resized layer, its channel attributes (plain ints); loading builds the parser's
unpruned model, resizes those layers to the saved shapes and loads the weights, all through
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from efficientbioai.errors import InputError
from efficientbioai.parsers.checkpoint import save_checkpoint

FORMAT = "efficientbioai-pruned-v1"
#: Integer attributes that describe a layer's channel shape.
_SHAPE_ATTRS = (
    "in_channels",
    "out_channels",
    "groups",
    "num_features",
    "in_features",
    "out_features",
    "num_channels",
    "num_groups",
    "num_parameters",
)


def _shape_attributes(model: nn.Module) -> dict[str, dict[str, int]]:
    attrs = {}
    for name, module in model.named_modules(remove_duplicate=False):
        found = {a: getattr(module, a) for a in _SHAPE_ATTRS if isinstance(getattr(module, a, None), int)}
        if found:
            attrs[name] = found
    return attrs


def save_pruned(model: nn.Module, path: str | Path) -> Path:
    """Write ``model`` (pruned) atomically as a weights-only checkpoint."""
    return save_checkpoint(
        {"format": FORMAT, "state_dict": model.state_dict(), "attributes": _shape_attributes(model)}, path
    )


def load_pruned(model: nn.Module, path: str | Path) -> nn.Module:
    """Resize ``model`` (the parser's unpruned architecture) to the saved shapes and load the weights."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"pruned checkpoint not found: {path}")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path} is not a pruned checkpoint written by efficientbioai (format {FORMAT})")
    state, attrs = data["state_dict"], data["attributes"]
    modules = dict(model.named_modules(remove_duplicate=False))
    for name, values in attrs.items():
        if name not in modules:
            raise InputError(f"{path}: layer {name!r} is not in the model the config builds; check model.params")
        for attr, value in values.items():
            setattr(modules[name], attr, value)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise InputError(
            f"{path}: pruned checkpoint does not match the config's model: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )
    for key, value in state.items():
        module_name, _, leaf = key.rpartition(".")
        module = modules[module_name]
        current = getattr(module, leaf)
        if isinstance(current, nn.Parameter):
            setattr(module, leaf, nn.Parameter(value.clone(), requires_grad=current.requires_grad))
        elif isinstance(current, torch.Tensor):
            module._buffers[leaf] = value.clone()
        else:
            raise InputError(f"{path}: cannot restore {key}")
    return model.eval()
