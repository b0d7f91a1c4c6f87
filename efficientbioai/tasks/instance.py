"""Instance segmentation with Cellpose: flows from the engine, masks from cellpose's dynamics,
average precision at IoU 0.5 / 0.75 / 0.9 from ``cellpose.metrics.average_precision``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from efficientbioai.cellpose._import import cellpose_module
from efficientbioai.cellpose.segment import masks_from_flows, predict_flows, prepare
from efficientbioai.datasets.nuclei import renumber
from efficientbioai.engines.base import BaseInfer
from efficientbioai.errors import InputError
from efficientbioai.io.images import write_tiff
from efficientbioai.parsers.base import Sample
from efficientbioai.registry import register_task
from efficientbioai.tasks.base import Task

#: IoU thresholds of the reported average precision (the cellpose papers' set).
IOU_THRESHOLDS = (0.5, 0.75, 0.9)


def average_precision(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """AP = TP / (TP + FP + FN) at each IoU in :data:`IOU_THRESHOLDS` (cellpose's definition);
    1.0 when neither image has an object (they agree), where cellpose returns NaN.

    Examples
    --------
    >>> a = np.zeros((8, 8), int); a[1:4, 1:4] = 1; a[5:8, 5:8] = 2
    >>> average_precision(a, a)["ap50"]
    1.0
    """
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.shape != pred.shape:
        raise InputError(f"label images differ in shape: {truth.shape} vs {pred.shape}")
    # cellpose counts objects as the maximum label, so ids must be 1..N
    truth, pred = renumber(truth.astype(np.int64)), renumber(pred.astype(np.int64))
    metrics = cellpose_module("metrics")
    with np.errstate(invalid="ignore", divide="ignore"):
        ap, tp, fp, fn = metrics.average_precision(
            [truth.astype(np.int32)], [pred.astype(np.int32)], threshold=list(IOU_THRESHOLDS)
        )
    ap = np.where(tp + fp + fn == 0, 1.0, ap)
    out = {f"ap{round(t * 100)}": float(v) for t, v in zip(IOU_THRESHOLDS, ap[0])}
    out["objects"] = float(len(np.unique(pred[pred > 0])))
    return out


@register_task("instance")
class InstanceSegmentationTask(Task):
    """Label images out; scored by AP against ground-truth labels and against fp32's labels."""

    preview_kind = "labels"

    primary_metric = "ap50"
    report_metrics = ("ap50", "ap75", "ap90")
    default_budget = {"ap50": -0.02}
    example_pad = "constant"  # example batches: tiles of bsize² zero-padded, as cellpose feeds them

    def _settings(self):
        return self.parser.settings

    def warm_up(self) -> np.ndarray:
        """Cellpose's dynamics are numba kernels compiled on first use: 17 s here, charged to the
        first variant's end-to-end time (the "torch is 4.5× slower end to end" of issue 17).
        Running them once on two disks' flows compiles every path the masks take; returns the
        two masks found."""
        yy, xx = np.mgrid[:48, :48]
        labels = ((yy - 16) ** 2 + (xx - 16) ** 2 < 64).astype(np.int32)
        labels[(yy - 32) ** 2 + (xx - 32) ** 2 < 64] = 2
        flows = 5.0 * cellpose_module("dynamics").masks_to_flows(labels)  # CPnet's flows are ×5
        cellprob = np.where(labels > 0, 5.0, -5.0)
        return masks_from_flows(np.concatenate([flows, cellprob[None]]), self._settings(), 1.0)

    def predict(self, engine: BaseInfer, sample: Sample) -> np.ndarray:
        settings = self._settings()
        x = prepare(sample.image, settings, self.parser.in_channels)
        rescale = self.parser.rescale()
        tile = self.config.inference.tile
        if tile[0] != tile[1]:
            raise InputError(f"cellpose tiles are square (bsize); inference.tile is {tile}")
        flows = predict_flows(engine, x, settings, rescale, batch_size=self.config.inference.batch_size, bsize=tile[0])
        return masks_from_flows(flows, settings, rescale)

    def score(self, output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        return average_precision(np.squeeze(reference), output)

    def write(self, output: np.ndarray, folder: Path, name: str) -> Path:
        """Masks as a label TIFF (uint16 when it fits, as cellpose saves them)."""
        dtype = np.uint16 if output.max() < 65536 else np.uint32
        return write_tiff(folder / f"{name}_masks.tif", output.astype(dtype))
