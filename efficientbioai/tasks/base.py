"""``Task``: how one kind of result is predicted, scored and written for a parser's model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from efficientbioai.config import Config
from efficientbioai.engines.base import BaseInfer
from efficientbioai.errors import InputError
from efficientbioai.io.images import list_images, read_image
from efficientbioai.io.inputs import IMAGE_READING, assumed
from efficientbioai.parsers.base import BaseParser, Sample


class Task(ABC):
    """Predict → score → write, for one task (``denoise``, ``segment``, ``localize``, ...)."""

    #: The metric the report leads with (a key of :meth:`score`'s result).
    primary_metric: str = ""
    #: Metrics shown against ground truth in the report table (default: the primary one).
    report_metrics: tuple[str, ...] = ()
    #: The family's accuracy budget when ``deploy.budget`` is unset (see :mod:`efficientbioai.budget`).
    default_budget: dict[str, float | str] = {}
    #: What throughput and energy are counted in (``images``, ``frames``, ...).
    unit: str = "images"
    #: How ``report.html`` shows outputs: ``image``, ``labels`` (over the input) or ``density``.
    preview_kind: str = "image"
    #: How :meth:`example_batch` pads an image smaller than the tile (an ``np.pad`` mode).
    example_pad: str = "edge"

    def count(self, sample: Sample) -> int:
        """Units of work in one sample (1 image; the number of frames of a stack)."""
        return 1

    def __init__(self, config: Config, parser: BaseParser) -> None:
        self.config = config
        self.parser = parser

    def samples(self) -> Iterator[Sample]:
        """``inference.input`` files (with ``inference.target``), else the parser's evaluation set."""
        inf = self.config.inference
        if inf.input is None:
            yield from self.parser.evaluation_samples()
            return
        inputs = list_images(inf.input)
        targets = list_images(inf.target) if inf.target else [None] * len(inputs)
        if len(targets) != len(inputs):
            raise InputError(f"inference: {len(inputs)} input images but {len(targets)} targets")
        for src, tgt in zip(inputs, targets):
            with assumed(IMAGE_READING):
                image = self.parser.channels_first(read_image(src), str(src))
            yield Sample(src.stem, image, read_image(tgt) if tgt is not None else None)

    def warm_up(self) -> object:
        """Pay one-time start-up costs of the task's own processing (JIT compilation, imports)
        before anything is timed, so they are not charged to whichever variant runs first."""
        return None

    def validation_samples(self) -> Iterator[Sample]:
        """Whole images (with ground truth where there is some) to choose a deployment on:
        ``data.validation``, never used for calibration, fine-tuning or the report."""
        yield from self.parser.split_samples("validation", self.config.data.validation)

    def example_batch(self, sample: Sample, batch_size: int) -> np.ndarray:
        """A realistic batch at the deployed tile size, for latency measurement."""
        x = self.parser.preprocess(sample.image)
        tile = tuple(self.config.inference.tile)
        pad = [(0, 0)] + [(0, max(0, t - s)) for t, s in zip(tile, x.shape[1:])]
        x = np.pad(x, pad, mode=self.example_pad)[(slice(None),) + tuple(slice(0, t) for t in tile)]
        return np.ascontiguousarray(np.repeat(x[None], batch_size, axis=0))

    @abstractmethod
    def predict(self, engine: BaseInfer, sample: Sample) -> np.ndarray:
        """The task's output for one sample."""

    def stream(self, sample: Sample):
        """The per-chunk pieces (a :class:`~efficientbioai.runtime.job.StreamJob`) the streaming
        runtime drives for ``sample``; None: the runtime calls :meth:`predict` on it whole."""
        return None

    def tile_metric(self, raw: np.ndarray, target: np.ndarray) -> float:
        """The primary metric of one raw network output tile ``(C, *tile)`` against its target."""
        raise NotImplementedError(f"{type(self).__name__} has no tile metric for accuracy control")

    @abstractmethod
    def score(self, output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        """Metrics of ``output`` against a reference (ground truth or the fp32 output)."""

    def extras(self, outputs: list[np.ndarray], samples: list[Sample], folder: Path) -> dict:
        """Task-specific figures or files for the deployed variant (none by default)."""
        return {}

    def preview(self, output: np.ndarray, sample: Sample) -> np.ndarray:
        """One output as a 2D image for the report's side-by-side figure."""
        return plane(output)

    def preview_input(self, sample: Sample) -> np.ndarray:
        """The input, on the same grid as :meth:`preview`."""
        return plane(sample.image)

    @abstractmethod
    def write(self, output: np.ndarray, folder: Path, name: str) -> Path:
        """Save one output; returns the file written."""


def plane(image: np.ndarray) -> np.ndarray:
    """A 2D view of an image: its first channel, the middle plane of a volume."""
    a = np.asarray(image, dtype=np.float32)
    while a.ndim > 2:
        a = a[0] if a.ndim == 4 or a.shape[0] <= 4 else a[a.shape[0] // 2]
    return a
