"""``BaseParser``: what the toolbox needs to know about one model family.

This class holds what a model's author may override: the network (:meth:`build_model`, the
only required method), its example input and dynamic axes, the layers kept in float or never
pruned, the graph to export, the normalisation, and optionally synthetic data and a
fine-tuning recipe. What every parser inherits unchanged comes from two mixins: the data
splits (:mod:`~efficientbioai.parsers.data_splits`) and the training crops and fine-tuning
helpers the built-in families share (:mod:`~efficientbioai.parsers.training_crops`). A plain
``nn.Module`` needs no parser at all (:mod:`efficientbioai.parsers.module`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
from torch import nn

from efficientbioai.config import Config
from efficientbioai.errors import ConfigError, InputError
from efficientbioai.io.intensity import normalize
from efficientbioai.parsers.checkpoint import load_state_dict
from efficientbioai.parsers.data_splits import DataSplits, Sample
from efficientbioai.parsers.training_crops import TrainingCrops
from efficientbioai.registry import PARSERS

__all__ = ["BaseParser", "Sample", "create_parser"]

_PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)


class BaseParser(DataSplits, TrainingCrops, ABC):
    """One model family. Subclasses must implement :meth:`build_model`."""

    #: Inference task run by default (a name in ``registry.TASKS``).
    task: str = "denoise"
    input_names: tuple[str, ...] = ("input",)
    output_names: tuple[str, ...] = ("output",)

    def __init__(self, config: Config) -> None:
        self.config = config

    # -- the model -------------------------------------------------------------------------
    @property
    def params(self) -> dict:
        return self.config.model.params

    @property
    def spatial_dims(self) -> int:
        """2 or 3; defaults to the length of ``inference.tile``."""
        return int(self.params.get("spatial_dims", len(self.config.inference.tile)))

    @property
    def in_channels(self) -> int:
        return int(self.params.get("in_channels", 1))

    @abstractmethod
    def build_model(self) -> nn.Module:
        """The architecture with fresh weights (no checkpoint)."""

    def checked_params(self, accepted: tuple[str, ...], family: str) -> dict:
        """``model.params``, or a :class:`ConfigError` naming the ones ``family`` does not accept."""
        unknown = sorted(set(self.params) - set(accepted))
        if unknown:
            raise ConfigError(f"model.params: {family} has no parameter(s) {unknown}; it accepts {list(accepted)}")
        return self.params

    def load_model(self) -> nn.Module:
        """The fp32 model with the checkpoint's weights, in eval mode."""
        model = self.build_model()
        ckpt = self.config.model.checkpoint
        if ckpt is not None:
            if not Path(ckpt).is_file():
                raise InputError(
                    f"model.checkpoint: {ckpt} not found (relative paths resolve against the config's folder, "
                    f"{self.config.source_dir or Path.cwd()}); fix the path in the config"
                )
            load_state_dict(model, ckpt)
        return model.eval()

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        """A tensor of the deployed tile shape, ``(batch, C, *tile)``."""
        tile = self.config.inference.tile
        if len(tile) != self.spatial_dims:
            raise ConfigError(f"inference.tile {tile} has {len(tile)} sizes but the model is {self.spatial_dims}D")
        return torch.zeros(batch_size, self.in_channels, *tile)

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """Axes of each input/output that may change at run time (batch and spatial)."""
        exp = self.config.export
        axes: dict[int, str] = {0: "batch"} if exp.dynamic_batch else {}
        if exp.dynamic_spatial:
            axes.update(enumerate("dhw"[3 - self.spatial_dims :], start=2))
        return {n: dict(axes) for n in (*self.input_names, *self.output_names)}

    @property
    def task_name(self) -> str:
        """The task to run: ``inference.task`` if set, else this family's own."""
        return self.config.inference.task or self.task

    def keep_float_nodes(self) -> list[str]:
        """Node names (fnmatch patterns) never quantized: the config's list, else the parser's default."""
        configured = self.config.quantize.keep_float
        return list(configured) if configured is not None else self.default_keep_float()

    def default_keep_float(self) -> list[str]:
        """Layers a family keeps in float unless the config says otherwise (e.g. output heads)."""
        return []

    def export_graph(self, model: nn.Module) -> nn.Module:
        """The module whose graph is exported: ``model``, an exactly equivalent form that engines
        run faster, or ``model`` with its post-processing appended (the task must accept both
        outputs). The ONNX file is verified against this module."""
        return model

    def test_tensors(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(preprocessed input batch, expected output)`` pairs the exported ONNX must reproduce
        (a bioimage.io package's test tensors); none by default."""
        return []

    def test_tolerance(self) -> tuple[float, float, int]:
        """Relative and absolute tolerance and mismatched elements per million for :meth:`test_tensors`."""
        return 1e-3, 1e-3, 100

    # -- pruning and fine-tuning -----------------------------------------------------------
    def protected_layers(self, model: nn.Module) -> list[str]:
        """Module names never pruned by default: the input layer and the output layer(s).

        The default takes the first and the last convolution / linear layer in registration
        order; families with several output heads override it.
        """
        layers = [n for n, m in model.named_modules() if isinstance(m, _PRUNABLE) and n]
        return list(dict.fromkeys([layers[0], layers[-1]])) if layers else []

    def fine_tune(self, model: nn.Module, reference: nn.Module, settings) -> dict | None:
        """The family's own fine-tuning recipe after pruning (``None``: use the generic loop)."""
        return None

    # -- data ------------------------------------------------------------------------------
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """Channels-first image → normalised float32, as the model was trained."""
        norm = self.config.inference.normalize
        return np.stack([normalize(c, norm.kind, norm.low, norm.high) for c in image])

    def synthetic_pair(self, split: str, index: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """``(image, target)`` of a built-in simulated data set; parsers that have one override."""
        raise ConfigError(f"parser {type(self).__name__} has no synthetic data; set data.{split}.source: files")


def create_parser(config: Config) -> BaseParser:
    """The parser named in ``model.parser``, checked to be a :class:`BaseParser`."""
    cls = PARSERS.get(config.model.parser)
    if not (isinstance(cls, type) and issubclass(cls, BaseParser)):
        raise ConfigError(f"model.parser {config.model.parser!r} is not a BaseParser subclass")
    return cls(config)
