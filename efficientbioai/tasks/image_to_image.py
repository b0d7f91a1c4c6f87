"""Image-to-image (``denoise``: Pearson, PSNR, SSIM) and semantic segmentation (``segment``: Dice).

``denoise`` reports PSNR and SSIM after CARE's normalisation (target percentile-normalised,
prediction affinely fitted to it, :func:`~efficientbioai.tasks.image_metrics.care_normalize`) as
``psnr`` / ``ssim``, and in the prediction's own units as ``psnr_raw`` / ``ssim_raw``.

Both normalise the image as the parser says, run it through :class:`SlidingWindow` at the
deployed tile size, and write TIFFs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from efficientbioai.engines.base import BaseInfer
from efficientbioai.errors import InputError
from efficientbioai.io.images import write_tiff
from efficientbioai.parsers.base import Sample
from efficientbioai.registry import register_task
from efficientbioai.runtime.job import run_in_memory
from efficientbioai.tasks.base import Task
from efficientbioai.tasks.block_job import BlockJob
from efficientbioai.tasks.image_metrics import dice, normalized_psnr, normalized_ssim, pearson, psnr, ssim
from efficientbioai.tasks.tiling import SlidingWindow


class _TiledTask(Task):
    def window(self) -> SlidingWindow:
        inf = self.config.inference
        return SlidingWindow(tuple(inf.tile), inf.overlap, inf.blend, inf.batch_size)

    def finish(self, raw: np.ndarray) -> np.ndarray:
        """Raw network output ``(C, *spatial)`` → the task's output."""
        return raw

    def predict(self, engine: BaseInfer, sample: Sample) -> np.ndarray:
        """The output for an image in memory: the streaming job (:meth:`stream`) run here."""
        return run_in_memory(self.stream(sample), engine)

    def stream(self, sample: Sample):
        """Blocks (map_overlap) for the streaming runtime (:mod:`efficientbioai.tasks.block_job`)."""
        return BlockJob(self, sample.name, sample.image)

    def tile_metric(self, raw: np.ndarray, target: np.ndarray) -> float:
        return self.score(self.finish(raw), target)[self.primary_metric]

    def write(self, output: np.ndarray, folder: Path, name: str) -> Path:
        return write_tiff(folder / f"{name}.tif", output)

    @staticmethod
    def _match(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
        reference = np.squeeze(reference) if reference.ndim > output.ndim else reference
        if reference.shape != output.shape:
            raise InputError(f"reference shape {reference.shape} does not match the output {output.shape}")
        return reference


@register_task("denoise")
class ImageToImageTask(_TiledTask):
    """Restoration / denoising / label-free prediction: a float image out."""

    primary_metric = "pearson"
    report_metrics = ("pearson", "psnr", "ssim")  # report.json also holds psnr_raw / ssim_raw
    default_budget = {"pearson": -0.005}

    def finish(self, raw: np.ndarray) -> np.ndarray:
        return raw[0] if raw.shape[0] == 1 else raw

    def tile_metric(self, raw: np.ndarray, target: np.ndarray) -> float:
        """Pearson only: accuracy control and fine-tuning curves call this per tile, many times."""
        output = self.finish(raw)
        return pearson(output, self._match(output, target))

    def score(self, output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        """Pearson; PSNR/SSIM after CARE's normalisation (``psnr``, ``ssim``) and raw (``*_raw``)."""
        reference = self._match(output, reference)
        return {
            "pearson": pearson(output, reference),
            "psnr": normalized_psnr(output, reference),
            "ssim": normalized_ssim(output, reference),
            "psnr_raw": psnr(output, reference),
            "ssim_raw": ssim(output, reference),
        }


@register_task("segment")
class SegmentationTask(_TiledTask):
    """Semantic segmentation: one logit channel (sigmoid > threshold) or class channels (argmax)."""

    primary_metric = "dice"
    default_budget = {"dice": -0.01}
    preview_kind = "labels"

    def finish(self, logits: np.ndarray) -> np.ndarray:
        if logits.shape[0] == 1:
            prob = 1.0 / (1.0 + np.exp(-logits[0]))
            return (prob > self.config.inference.threshold).astype(np.uint8)
        return np.argmax(logits, axis=0).astype(np.uint8)

    def score(self, output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        reference = self._match(output, reference).astype(np.int64)
        classes = [c for c in np.union1d(np.unique(output), np.unique(reference)) if c != 0] or [1]
        return {"dice": float(np.mean([dice(output == c, reference == c) for c in classes]))}
