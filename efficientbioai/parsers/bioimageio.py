"""``BioimageioParser``: a bioimage.io model package compressed without a parser written for it.

    model: {bioimageio: downloads/unet2d.zip}      # or the package's rdf.yaml

The network comes from the package's ``pytorch_state_dict`` (with its architecture) or its
``torchscript`` weights; the spatial axes, channels and allowed tile sizes from its input axes;
the normalisation from its preprocessing (applied to calibration and evaluation data alike);
and its test tensors check the exported ONNX. Without files of the user's, the package's test
input is the calibration and evaluation image, and its test output the expected result.
"""

from __future__ import annotations

import io
import logging
from functools import cached_property

import numpy as np
import torch
from torch import nn

from efficientbioai.config import Config
from efficientbioai.errors import ConfigError
from efficientbioai.io.bioimageio import load_package
from efficientbioai.parsers.base import BaseParser
from efficientbioai.registry import register_parser

log = logging.getLogger(__name__)


@register_parser("bioimageio")
class BioimageioParser(BaseParser):
    """A spec-0.5 package with one input and one output, axes ``batch, channel, (z,) y, x``."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.descr = load_package(config.model.bioimageio)
        self.input, self.output = self.descr.inputs[0], self.descr.outputs[0]
        kinds = [a.type for a in self.input.axes]
        if len(self.descr.inputs) != 1 or kinds[:2] != ["batch", "channel"] or set(kinds[2:]) != {"space"}:
            raise ConfigError(
                f"{config.model.bioimageio}: inputs {[i.id for i in self.descr.inputs]} with axes {kinds}; "
                "efficientbioai compresses one input with axes (batch, channel, [z,] y, x)"
            )
        self.axis_ids = ["channel", *(str(a.id) for a in self.input.axes[2:])]
        if "tile" not in config.inference.model_fields_set:  # ≥ 64 (z: 16), or the test input's own size
            test = self.test_arrays[0].shape[2:]
            wants = [min(64 if str(a.id) != "z" else 16, n) for a, n in zip(self.input.axes[2:], test)]
            config.inference.tile = [self._size_at_least(a, w) for a, w in zip(self.input.axes[2:], wants)]
        self._check_tile(config.inference.tile)

    @cached_property
    def test_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The package's test input and output (read from the package once)."""
        return self.descr.get_input_test_arrays()[0], self.descr.get_output_test_arrays()[0]

    # -- the model -------------------------------------------------------------------------
    @property
    def spatial_dims(self) -> int:
        return len(self.axis_ids) - 1

    @property
    def in_channels(self) -> int:
        return len(self.input.axes[1].channel_names)

    @property
    def task(self) -> str:
        return self.config.inference.task or "denoise"

    def build_model(self) -> nn.Module:
        weights = self.descr.weights
        if weights.pytorch_state_dict is not None:
            from bioimageio.core.backends.pytorch_backend import load_torch_model

            return load_torch_model(weights.pytorch_state_dict, load_state=True, devices=["cpu"])
        if weights.torchscript is not None:
            return torch.jit.load(io.BytesIO(weights.torchscript.get_reader().read()), map_location="cpu")
        raise ConfigError(
            f"{self.config.model.bioimageio}: weights {weights.available_formats}; compressing needs "
            "pytorch_state_dict or torchscript weights"
        )

    # -- sizes -----------------------------------------------------------------------------
    @staticmethod
    def _size_at_least(axis, want: int) -> int:
        size = axis.size
        if isinstance(size, int):
            return size
        if hasattr(size, "step"):
            return size.min + max(0, -(-(want - size.min) // size.step)) * size.step if size.step else size.min
        raise ConfigError(f"input axis {axis.id}: size {size!r} (a reference) is not supported")

    def _check_tile(self, tile: list[int]) -> None:
        for axis, t in zip(self.input.axes[2:], tile):
            size = axis.size
            ok = t == size if isinstance(size, int) else t >= size.min and (t - size.min) % max(size.step, 1) == 0
            if not ok:
                allowed = size if isinstance(size, int) else f"{size.min} + n × {size.step}"
                raise ConfigError(f"inference.tile {tile}: axis {axis.id} of the package takes {allowed}")

    # -- data ------------------------------------------------------------------------------
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """The package's preprocessing on a ``(C, *spatial)`` image."""
        x = np.asarray(image, np.float32)
        for step in self.input.preprocessing:
            x = _apply(step, x, self.axis_ids)
        return x.astype(np.float32)

    def synthetic_pair(self, split: str, index: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """The package's test input and output (there is no simulator)."""
        if split == "calibration" and index == 0:
            log.warning("calibrating on the package's test input only: pass --calibration with your own images")
        return self.test_arrays[0][0], self.test_arrays[1][0]

    def test_tensors(self) -> list[tuple[np.ndarray, np.ndarray]]:
        raw, expected = self.test_arrays
        return [(self.preprocess(raw[0])[None], np.asarray(expected, np.float32))]

    def test_tolerance(self) -> tuple[float, float, int]:
        config = getattr(self.descr.config, "bioimageio", None)
        for t in getattr(config, "reproducibility_tolerance", None) or []:
            if not t.weights_formats or "onnx" in t.weights_formats:
                return t.relative_tolerance, t.absolute_tolerance, t.mismatched_elements_per_million
        return 1e-3, 1e-3, 100  # the spec's defaults


def _apply(step, x: np.ndarray, axis_ids: list[str]) -> np.ndarray:
    """One bioimage.io processing step on a ``(C, *spatial)`` array whose axes are ``axis_ids``."""
    kw = getattr(step, "kwargs", None)

    def reduce_axes() -> tuple[int, ...]:
        axes = getattr(kw, "axes", None)
        return tuple(axis_ids.index(str(a)) for a in axes) if axes else tuple(range(x.ndim))

    def per(values, axis) -> np.ndarray:
        v = np.asarray(values, np.float32)
        if v.ndim == 0 or axis is None:
            return v
        shape = [1] * x.ndim
        shape[axis_ids.index(str(axis))] = -1
        return v.reshape(shape)

    if step.id == "ensure_dtype":
        return x.astype(np.float32)
    if step.id == "scale_range":
        ax = reduce_axes()
        lo = np.percentile(x, kw.min_percentile, axis=ax, keepdims=True)
        hi = np.percentile(x, kw.max_percentile, axis=ax, keepdims=True)
        return (x - lo) / (hi - lo + kw.eps)
    if step.id == "zero_mean_unit_variance":
        ax = reduce_axes()
        return (x - x.mean(ax, keepdims=True)) / (x.std(ax, keepdims=True) + kw.eps)
    if step.id == "fixed_zero_mean_unit_variance":
        return (x - per(kw.mean, getattr(kw, "axis", None))) / (per(kw.std, getattr(kw, "axis", None)) + kw.eps)
    if step.id == "scale_linear":
        return x * per(kw.gain, getattr(kw, "axis", None)) + per(kw.offset, getattr(kw, "axis", None))
    if step.id == "clip":
        return np.clip(x, kw.min, kw.max)
    if step.id == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if step.id == "binarize":
        return (x > kw.threshold).astype(np.float32)
    raise ConfigError(f"bioimage.io preprocessing {step.id!r} is not supported; normalise the inputs yourself")
