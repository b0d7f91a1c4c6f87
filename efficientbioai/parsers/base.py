"""``BaseParser``: everything the toolbox needs to know about one model family.

A parser builds the fp32 network from its checkpoint, gives an example input with its dynamic
axes, yields calibration inputs and evaluation samples, normalises images the way the model
was trained, and names the layers that must stay in float. A user's parser subclasses this,
overrides :meth:`build_model` (and whatever else differs), and is named in the YAML as
``package.module:ClassName``. See ``tutorial/custom_model.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from efficientbioai.config import Config, SplitSection
from efficientbioai.errors import ConfigError, InputError
from efficientbioai.parsers.checkpoint import load_state_dict
from efficientbioai.tasks.image_io import list_images, read_image
from efficientbioai.tasks.normalize import normalize

_PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)


@dataclass
class Sample:
    """One evaluation image: raw pixels (channels first), optional ground truth, a name for files."""

    name: str
    image: np.ndarray
    target: np.ndarray | None = None


class BaseParser(ABC):
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
        axes: dict[int, str] = {}
        if exp.dynamic_batch:
            axes[0] = "batch"
        if exp.dynamic_spatial:
            for i, name in enumerate("dhw"[3 - self.spatial_dims :]):
                axes[2 + i] = name
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

    # -- pruning and fine-tuning -----------------------------------------------------------
    def protected_layers(self, model: nn.Module) -> list[str]:
        """Module names never pruned by default: the input layer and the output layer(s).

        The default takes the first and the last convolution / linear layer in registration
        order; families with several output heads override it.
        """
        layers = [n for n, m in model.named_modules() if isinstance(m, _PRUNABLE) and n]
        return list(dict.fromkeys([layers[0], layers[-1]])) if layers else []

    def training_batch(
        self, index: int, batch_size: int, tile: list[int] | None = None, split: str = "train"
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(inputs (B, C, *tile), targets (B, C_out, *tile))`` of the parser's training data,
        for fine-tuning; ``None`` when the family has no built-in training data.

        Crops (random position and flips, seeded by ``index``) of synthetic images twice the
        tile size, each normalised as a whole before cropping — as at inference, where whole
        images are normalised and then tiled. Normalising a small crop on its own shifts the
        input distribution and the fine-tuned model pays for it on real-sized images. A pool
        of :attr:`training_pool` images per split is simulated on first use and reused.
        """
        tile = tuple(tile or self.config.inference.tile)
        shape = tuple(2 * t for t in tile)
        rng = np.random.default_rng([index, batch_size, 20251122])
        xs, ys = [], []
        for _ in range(batch_size):
            pair = self._pooled_pair(split, int(rng.integers(self.training_pool)), shape)
            if pair is None:
                return None
            x, y = pair
            both = _random_crop(np.concatenate([x, y]), tile, rng)
            for axis in range(1, both.ndim):
                if rng.random() < 0.5:
                    both = np.flip(both, axis)
            xs.append(both[: len(x)])
            ys.append(both[len(x) :])
        return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)

    #: Synthetic images per split behind :meth:`training_batch`.
    training_pool: int = 128

    def _pooled_pair(self, split: str, seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
        pool = self.__dict__.setdefault("_training_pool_cache", {})
        key = (split, seed, shape)
        if key not in pool:
            try:
                image, target = self.synthetic_pair(split, seed, shape)
            except ConfigError:
                return None
            x = self.preprocess(self.channels_first(image)).astype(np.float32)
            pool[key] = (x, np.asarray(target, np.float32).reshape(-1, *shape))
        return pool[key]

    def fine_tune(self, model: nn.Module, reference: nn.Module, settings) -> dict | None:
        """The family's own fine-tuning recipe after pruning (``None``: use the generic loop)."""
        return None

    def fine_tune_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of the generic fine-tuning loop (mean squared error)."""
        return torch.nn.functional.mse_loss(output, target)

    def fine_tune_metric(self, output: np.ndarray, target: np.ndarray) -> tuple[str, float] | None:
        """The task's primary metric on a batch of raw outputs, for the fine-tuning curve."""
        from efficientbioai.registry import TASKS

        task = TASKS.get(self.task_name)(self.config, self)
        try:
            values = [task.tile_metric(o, t[0] if t.shape[0] == 1 else t) for o, t in zip(output, target)]
        except NotImplementedError:
            return None
        return task.primary_metric, float(np.mean(values))

    def taylor_loss_fn(self):
        """A ``loss(model)`` on one training batch for Taylor importance, or ``None``."""
        pair = self.training_batch(0, 2)
        if pair is None:
            return None
        x, y = (torch.from_numpy(a) for a in pair)
        return lambda model: self.fine_tune_loss(model(x), y)

    # -- data ------------------------------------------------------------------------------
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """Channels-first image → normalised float32, as the model was trained."""
        norm = self.config.inference.normalize
        return np.stack([normalize(c, norm.kind, norm.low, norm.high) for c in image])

    def channels_first(self, image: np.ndarray, name: str = "image") -> np.ndarray:
        """Check dimensions and channels; return ``(C, *spatial)``."""
        sd, c = self.spatial_dims, self.in_channels
        if image.ndim == sd and c == 1:
            return image[None]
        if image.ndim == sd + 1 and image.shape[0] == c:
            return image
        want = f"{sd}D {'(' + 'ZYX'[3 - sd :] + ')' if c == 1 else ''} or (C={c}, {'ZYX'[3 - sd :]})"
        raise InputError(
            f"{name}: shape {image.shape} does not fit a {sd}D model with {c} input channel(s); "
            f"expected {want.replace('  ', ' ')}"
        )

    def synthetic_pair(self, split: str, index: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """``(image, target)`` of a built-in simulated data set; parsers that have one override."""
        raise ConfigError(f"parser {type(self).__name__} has no synthetic data; set data.{split}.source: files")

    def _split_samples(self, split: str, spec: SplitSection) -> Iterator[Sample]:
        if spec.source == "synthetic":
            shape = tuple(spec.shape or [2 * t for t in self.config.inference.tile])
            for i in range(spec.num_samples):
                image, target = self.synthetic_pair(split, i, shape)
                yield Sample(f"{split}_{i:04d}", self.channels_first(image), target)
            return
        inputs = list_images(spec.inputs)[: spec.num_samples]
        targets = list_images(spec.targets)[: len(inputs)] if spec.targets else [None] * len(inputs)
        if len(targets) != len(inputs):
            raise InputError(f"data.{split}: {len(inputs)} inputs but {len(targets)} targets")
        for src, tgt in zip(inputs, targets):
            image = self.channels_first(read_image(src), str(src))
            target = read_image(tgt) if tgt is not None else None
            yield Sample(src.stem, image, target)

    def evaluation_samples(self) -> Iterator[Sample]:
        """Images (and ground truth) to score every variant on; never used for calibration."""
        yield from self._split_samples("evaluation", self.config.data.evaluation)

    def validation_pairs(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(input (1, C, *tile), target tile)`` pairs for accuracy-controlled quantization."""
        spec = self.config.data.validation
        if spec.shape is None and spec.source == "synthetic":
            spec = spec.model_copy(update={"shape": list(self.config.inference.tile)})
        tile = tuple(self.config.inference.tile)
        rng = np.random.default_rng(1)
        for sample in self._split_samples("validation", spec):
            if sample.target is None:
                raise InputError("data.validation needs targets for accuracy-controlled quantization")
            x = self.preprocess(sample.image)
            target = sample.target.reshape(-1, *sample.target.shape[-len(tile) :])
            both = _random_crop(np.concatenate([x, target.astype(np.float32)]), tile, rng)
            yield both[None, : len(x)], np.squeeze(both[len(x) :], 0) if len(target) == 1 else both[len(x) :]

    def calibration_inputs(self) -> Iterator[np.ndarray]:
        """``data.calibration.num_samples`` preprocessed ``(1, C, *tile)`` arrays for int8
        calibration, cropped at seeded positions; fewer images than samples give several crops each."""
        spec = self.config.data.calibration
        tile = tuple(self.config.inference.tile)
        rng = np.random.default_rng(0)
        images = [self.preprocess(s.image) for s in self._split_samples("calibration", spec)]
        for i in range(spec.num_samples if images else 0):
            yield _random_crop(images[i % len(images)], tile, rng)[None]


def _random_crop(x: np.ndarray, tile: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A ``tile``-sized crop of ``x`` (C, *spatial), reflect-padded where ``x`` is smaller."""
    pad = [(0, 0)] + [(0, max(0, t - s)) for t, s in zip(tile, x.shape[1:])]
    if any(p[1] for p in pad):
        x = np.pad(x, pad, mode="reflect" if all(s > 1 for s in x.shape[1:]) else "edge")
    starts = [int(rng.integers(0, s - t + 1)) for s, t in zip(x.shape[1:], tile)]
    index = (slice(None),) + tuple(slice(a, a + t) for a, t in zip(starts, tile))
    return np.ascontiguousarray(x[index])
