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

from collections.abc import Iterable

import numpy as np
import torch
from torch.nn import functional as F

from efficientbioai.engines.base import BaseInfer
from efficientbioai.engines.torch_engine import TorchModule


def sum_predictions(engine: BaseInfer, batches: Iterable[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The sum over all frames of ``max(prediction, 0)``, an ``shape`` float32 image.

    ``batches`` are network inputs ``(n, 1, h, w)``; ``shape`` is the output grid (``u·h, u·w``).
    Works whether or not the model sums the batch itself (its output has 1 or ``n`` images).
    """
    if isinstance(engine, TorchModule):
        return _sum_on_device(engine, batches, shape)
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


def _sum_on_device(engine: TorchModule, batches: Iterable[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    acc = torch.zeros(shape, device=engine.device)
    with torch.no_grad():
        for x in batches:
            out = engine.model(torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(engine.device))
            acc += F.relu(out[:, 0]).sum(0)
    engine.sync()
    return acc.cpu().numpy()
