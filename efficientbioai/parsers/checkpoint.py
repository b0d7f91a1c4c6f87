"""Safe checkpoint loading: ``torch.load(weights_only=True)`` and messages that say what differs."""

from __future__ import annotations

import logging
import os
import time
import zipfile
from pathlib import Path

import torch
from torch import nn

from efficientbioai.errors import ConfigError, InputError

log = logging.getLogger(__name__)

#: Keys a training checkpoint keeps the network's state_dict under: PyTorch Lightning and
#: many scripts (``state_dict``, ``model_state_dict``), MONAI bundles' and ignite's
#: ``CheckpointSaver(save_dict={"model": net, ...})`` and MONAI tutorials' ``{"net": net, "opt": opt}``.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")
#: Key prefixes of wrapped modules: ``nn.DataParallel`` / DDP (``module.``) and
#: ``torch.compile`` (``_orig_mod.``), in either nesting.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def training_output(checkpoint: Path | None, output: str | Path | None) -> Path:
    """Where a trainer writes its weights: ``output`` when asked, else a new file beside
    ``model.checkpoint`` (``<name>_trained_<time>.pt``), so no command overwrites the config's
    checkpoint (a shipped model among them) unless told to with ``--output``."""
    if output is not None:
        return Path(output)
    if checkpoint is None:
        raise ConfigError("training needs --output or model.checkpoint: where to write the trained weights")
    checkpoint = Path(checkpoint)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return checkpoint.with_name(f"{checkpoint.stem}_trained_{stamp}{checkpoint.suffix or '.pt'}")


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


def _is_state_dict(data: object) -> bool:
    """A non-empty mapping of names to tensors (an optimizer's state_dict is not: it holds lists)."""
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items())
    )


def _is_torchscript(path: Path) -> bool:
    """``torch.jit.save`` archives (MONAI bundles' ``model.ts``) hold code, not just weights."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def _network_state(data: object, path: Path) -> dict[str, torch.Tensor]:
    """The network's state_dict in what ``torch.load`` returned: the mapping itself, the one
    under a usual key, or the only state_dict in a dict of several objects. Anything else is
    ambiguous or not a network: refused, naming the keys found, rather than guessed."""
    if _is_state_dict(data):
        return data
    if not isinstance(data, dict) or not data:
        what = "an empty mapping" if isinstance(data, dict) else f"a {type(data).__name__}"
        raise InputError(
            f"{path}: holds {what}, not a state_dict "
            "(a mapping of names to tensors). Save it with torch.save(model.state_dict(), path)."
        )
    names = sorted(map(str, data))
    found = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
    nested = [k for k, v in data.items() if _is_state_dict(v)]
    usual = [k for k in _WRAPPER_KEYS if k in nested]
    chosen = usual or nested
    if len(chosen) == 1:
        if len(data) > 1:
            log.info("%s: loading the network state_dict under %r (keys found: %s)", path, chosen[0], found)
        return data[chosen[0]]
    if len(chosen) > 1:
        raise InputError(
            f"{path}: holds several state_dicts ({', '.join(map(repr, chosen))}); it is not clear which is "
            f"the network to deploy. Save that one alone: torch.save(ckpt[{chosen[0]!r}], 'net.pt')."
        )
    raise InputError(
        f"{path}: holds no network state_dict (a mapping of names to tensors); keys found: {found}. "
        "Save the network's weights with torch.save(model.state_dict(), path)."
    )


def _strip_wrapper_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop ``module.`` / ``_orig_mod.`` when every key has it: the wrapped network's own names."""
    while prefix := next((p for p in _WRAPPER_PREFIXES if all(k.startswith(p) for k in state)), None):
        state = {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state_dict (or a training checkpoint holding one) without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    if _is_torchscript(path):
        raise InputError(
            f"{path}: is a TorchScript archive (torch.jit.save), which holds code, not only weights. Save "
            "its weights where you trust the file: torch.save(torch.jit.load(path).state_dict(), 'net.pt')."
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "Unsupported global" in str(exc):  # torch's weights-only unpickler met a Python object
            raise InputError(
                f"{path}: holds pickled Python objects besides tensors; loading it would run code from "
                "the file, which this tool never does (torch.load(weights_only=True)). Where you trust the "
                "file, save its weights alone: torch.save(torch.load(path, weights_only=False)"
                ".state_dict(), 'weights.pt') (or ...['state_dict'] for a training checkpoint)"
            ) from None
        raise InputError(
            f"{path}: cannot be read as a weights-only PyTorch checkpoint ({type(exc).__name__}); is it a "
            "checkpoint? Save the weights with torch.save(model.state_dict(), path)"
        ) from None
    state = _strip_wrapper_prefixes(_network_state(data, path))
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise InputError(
            f"{path}: {len(bad)} tensor(s) hold NaN or Inf ({', '.join(bad[:4])}{', ...' if len(bad) > 4 else ''}); "
            "the training diverged or the file is damaged: use an earlier checkpoint"
        )
    return state


def load_state_dict(model: nn.Module, path: str | Path, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """Load ``path`` (or ``state``, already read from it) into ``model``, raising
    :class:`InputError` that lists what does not match."""
    state = read_state_dict(path) if state is None else state
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
