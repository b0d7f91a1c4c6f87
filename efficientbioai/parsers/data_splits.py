"""Data splits every parser inherits: evaluation, validation and calibration, from files or simulated.

``data.<split>.source: files`` reads the user's images (sorted, matched to targets by order);
``synthetic`` asks the parser's :meth:`~efficientbioai.parsers.base.BaseParser.synthetic_pair`.
Calibration and validation take seeded tile-sized crops of whole, normalised images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from efficientbioai.config import SplitSection
from efficientbioai.errors import InputError
from efficientbioai.io.images import list_images, read_image


@dataclass
class Sample:
    """One evaluation image: raw pixels (channels first), optional ground truth, a name for files."""

    name: str
    image: np.ndarray
    target: np.ndarray | None = None


class DataSplits:
    """The split readers of :class:`~efficientbioai.parsers.base.BaseParser` (a mixin)."""

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

    def split_samples(self, split: str, spec: SplitSection) -> Iterator[Sample]:
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
        yield from self.split_samples("evaluation", self.config.data.evaluation)

    def validation_pairs(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(input (1, C, *tile), target tile)`` pairs for accuracy-controlled quantization."""
        spec = self.config.data.validation
        if spec.shape is None and spec.source == "synthetic":
            spec = spec.model_copy(update={"shape": list(self.config.inference.tile)})
        tile = tuple(self.config.inference.tile)
        rng = np.random.default_rng(1)
        for sample in self.split_samples("validation", spec):
            if sample.target is None:
                raise InputError("data.validation needs targets for accuracy-controlled quantization")
            x = self.preprocess(sample.image)
            target = sample.target.reshape(-1, *sample.target.shape[-len(tile) :])
            both = random_crop(np.concatenate([x, target.astype(np.float32)]), tile, rng)
            yield both[None, : len(x)], np.squeeze(both[len(x) :], 0) if len(target) == 1 else both[len(x) :]

    def calibration_inputs(self) -> Iterator[np.ndarray]:
        """``data.calibration.num_samples`` preprocessed ``(1, C, *tile)`` arrays for int8
        calibration, cropped at seeded positions; fewer images than samples give several crops each."""
        spec = self.config.data.calibration
        tile = tuple(self.config.inference.tile)
        rng = np.random.default_rng(0)
        images = [self.preprocess(s.image) for s in self.split_samples("calibration", spec)]
        for i in range(spec.num_samples if images else 0):
            yield random_crop(images[i % len(images)], tile, rng)[None]


def random_crop(x: np.ndarray, tile: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A ``tile``-sized crop of ``x`` (C, *spatial), reflect-padded where ``x`` is smaller."""
    pad = [(0, 0)] + [(0, max(0, t - s)) for t, s in zip(tile, x.shape[1:])]
    if any(p[1] for p in pad):
        x = np.pad(x, pad, mode="reflect" if all(s > 1 for s in x.shape[1:]) else "edge")
    starts = [int(rng.integers(0, s - t + 1)) for s, t in zip(x.shape[1:], tile)]
    index = (slice(None),) + tuple(slice(a, a + t) for a, t in zip(starts, tile))
    return np.ascontiguousarray(x[index])
