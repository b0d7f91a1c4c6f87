"""Summing per-frame predictions into one super-resolution image without copying every frame back.

The Deep-STORM/TensorRT paper keeps the sum on the GPU: each frame's prediction is added to an
accumulator on the device and only the final image is copied to the host. Here:

- the exported graph can already contain the sum (``model.params.sum_frames``, the default):
  ONNX Runtime and OpenVINO then return one image per *batch*, which is added into a
  preallocated host accumulator — one ``u·H × u·W`` copy per batch instead of one per frame;
- the torch engine's accumulator is a tensor on the engine's device; batches go to the device,
  the sum stays there, and a single copy to the host happens at the end.

Negatives are clipped before summing, as Deep-STORM does (``predicted_density[< 0] = 0``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

if TYPE_CHECKING:
    from efficientbioai.engines.base import BaseInfer


def sum_predictions(engine: BaseInfer, batches: Iterable[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The sum over all frames of ``max(prediction, 0)``, an ``shape`` float32 image.

    ``batches`` are network inputs ``(n, 1, h, w)``; ``shape`` is the output grid (``u·h, u·w``).
    Works whether or not the model sums the batch itself (its output has 1 or ``n`` images).
    """
    if engine.keeps_outputs_on_device:
        return sum_on_device(lambda x: engine.device_outputs(x)[0], batches, shape)
    acc = np.zeros(shape, np.float32)
    for out in engine.map_batches(batches):
        out = np.asarray(out)
        if out.shape[-2:] != shape:
            raise ValueError(f"engine output {out.shape} does not match the accumulator {shape}")
        if out.shape[0] == 1:  # summed (and clipped) in the graph, or a one-frame batch
            np.add(acc, np.maximum(out[0, 0], 0.0), out=acc)
        else:
            np.add(acc, np.maximum(out[:, 0], 0.0).sum(0), out=acc)
    return acc


def sum_on_device(
    fn: Callable[[np.ndarray], torch.Tensor], batches: Iterable[np.ndarray], shape: tuple[int, int]
) -> np.ndarray:
    """The same sum kept where ``fn`` (batch → output tensor) leaves its outputs; one copy at the end."""
    acc = None
    with torch.no_grad():
        for x in batches:
            part = F.relu(fn(x)[:, 0]).sum(0)
            acc = part if acc is None else acc + part
    return np.zeros(shape, np.float32) if acc is None else acc.cpu().numpy()
