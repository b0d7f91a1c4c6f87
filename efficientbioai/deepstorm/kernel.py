"""The small Gaussian that turns spikes into targets and predictions into comparable images.

Deep-STORM convolves its spike targets with a 7×7 Gaussian of σ = 1 fine pixel (MATLAB's
``fspecial('gaussian', [7 7], 1)``) and blurs the prediction with the same kernel in the loss.
One definition here keeps the targets, the loss and the metric consistent.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F


def gaussian_kernel(sigma_px: float, size: int | None = None) -> np.ndarray:
    """A normalised (sum 1) square Gaussian; ``size`` defaults to 2·⌈3σ⌉ + 1 (7 for σ = 1).

    Examples
    --------
    >>> k = gaussian_kernel(1.0)
    >>> k.shape, round(float(k.sum()), 6)
    ((7, 7), 1.0)
    """
    if sigma_px <= 0:
        raise ValueError(f"sigma_px must be positive, got {sigma_px}")
    size = size or 2 * math.ceil(3 * sigma_px) + 1
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma_px**2))
    return (g / g.sum()).astype(np.float32)


def torch_blur(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """``x (..., H, W)`` convolved with :func:`gaussian_kernel` (zero outside, same size), differentiable.

    The normalised 2D Gaussian is the outer product of a 1D one, so the blur is two passes of
    weighted shifted slices: 4× cheaper than a 7×7 ``conv2d`` on one channel in the forward pass
    and the backward pass (oneDNN is slow on single-channel convolutions), same result.
    """
    g = gaussian_kernel(sigma_px).sum(0).tolist()
    r = len(g) // 2
    h, w = x.shape[-2:]
    xp = F.pad(x, (r, r, 0, 0))
    x = sum(gi * xp[..., :, i : i + w] for i, gi in enumerate(g))
    xp = F.pad(x, (0, 0, r, r))
    return sum(gi * xp[..., i : i + h, :] for i, gi in enumerate(g))


def blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """``image`` convolved with :func:`gaussian_kernel` (zero outside, same size), float64."""
    return ndimage.convolve(
        np.asarray(image, np.float64), gaussian_kernel(sigma_px).astype(np.float64), mode="constant"
    )
