"""``ModuleParser``: any ``nn.Module``, with no parser written for it.

    model: {target: mypackage.nets:UNet, kwargs: {depth: 4}, checkpoint: unet.pt}
    inference: {task: denoise, tile: [128, 128]}

The task comes from ``inference.task`` (default ``denoise``), the spatial dimensions from
``inference.tile``, the input channels from the network's first layer. Evaluation and
calibration images come from ``data.*`` or ``inference.input`` (there is no synthetic data).
``efficientbioai.compress(model=net, ...)`` passes a module object instead of ``target``; its
class is recorded as ``target`` and checked to rebuild from ``model.kwargs`` (its constructor
arguments), so that ``deploy.yaml`` can rebuild it in another process.
"""

from __future__ import annotations

import copy
from functools import cached_property

from torch import nn

from efficientbioai.config import Config
from efficientbioai.errors import ConfigError
from efficientbioai.parsers.base import BaseParser
from efficientbioai.registry import _import_plugin, register_parser

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)


def module_target(module: nn.Module) -> str:
    """``package.module:ClassName`` of ``module``'s class, or a :class:`ConfigError` if no other
    process could import it (a class defined in a notebook or a script run as ``__main__``)."""
    cls = type(module)
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise ConfigError(
            f"{cls.__qualname__} is defined in {cls.__module__} (a script or notebook), so deploy.yaml could not "
            "rebuild it in another process: move the class into a .py module on your PYTHONPATH"
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def check_rebuilds(module: nn.Module, config: Config) -> None:
    """A :class:`ConfigError` unless ``target(**kwargs)`` has ``module``'s parameters and shapes."""
    rebuilt = ModuleParser(config).build_model().state_dict()
    given = module.state_dict()
    wrong = [k for k in given if k not in rebuilt or tuple(rebuilt[k].shape) != tuple(given[k].shape)]
    wrong += [k for k in rebuilt if k not in given]
    if wrong:
        k = wrong[0]
        got = tuple(rebuilt[k].shape) if k in rebuilt else "absent"
        want = tuple(given[k].shape) if k in given else "absent"
        raise ConfigError(
            f"{config.model.target}(**{config.model.kwargs}) does not rebuild the model given ({len(wrong)} "
            f"parameters differ, e.g. {k}: {got} vs {want}); pass its constructor arguments as "
            "config['model']['kwargs']"
        )


@register_parser("module")
class ModuleParser(BaseParser):
    """A plain network: built from ``model.target`` and ``model.kwargs``, or the module given."""

    def __init__(self, config: Config, module: nn.Module | None = None) -> None:
        super().__init__(config)
        self.module = module

    @property
    def task(self) -> str:  # the config's task, else denoise
        return self.config.inference.task or "denoise"

    @cached_property
    def in_channels(self) -> int:  # from the first layer: built once, not per image
        if "in_channels" in self.params:
            return int(self.params["in_channels"])
        first = next((m for m in self.build_model().modules() if isinstance(m, _LAYERS)), None)
        return int(getattr(first, "in_channels", getattr(first, "in_features", 1)))

    def build_model(self) -> nn.Module:
        if self.module is not None:
            return copy.deepcopy(self.module)
        cls = _import_plugin(self.config.model.target, "model.target")
        try:
            return cls(**self.config.model.kwargs)
        except TypeError as exc:
            raise ConfigError(f"model.target {self.config.model.target}: {exc}; fix model.kwargs") from None
