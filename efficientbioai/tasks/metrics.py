"""Image metrics: Pearson, PSNR, SSIM (image-to-image) and Dice (segmentation).

All take numpy arrays of equal shape and return a float; higher is better for all four.
"""

from __future__ import annotations

import numpy as np


def _check(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: prediction {a.shape} vs reference {b.shape}")
    return a, b


def pearson(pred: np.ndarray, ref: np.ndarray) -> float:
    """Pearson correlation coefficient over all pixels.

    Examples
    --------
    >>> pearson(np.array([1., 2, 3]), np.array([2., 4, 6]))
    1.0
    """
    a, b = _check(pred, ref)
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float(np.clip((a * b).sum() / denom, -1.0, 1.0)) if denom > 0 else 0.0


def psnr(pred: np.ndarray, ref: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB; ``data_range`` defaults to the reference's max − min."""
    a, b = _check(pred, ref)
    rng = float(b.max() - b.min()) if data_range is None else float(data_range)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(rng**2 / mse))


def ssim(pred: np.ndarray, ref: np.ndarray, data_range: float | None = None) -> float:
    """Structural similarity (scikit-image), 2D or 3D, ``data_range`` from the reference."""
    from skimage.metrics import structural_similarity

    a, b = _check(pred, ref)
    rng = float(b.max() - b.min()) if data_range is None else float(data_range)
    win = min(7, *[s if s % 2 else s - 1 for s in a.shape])
    return float(structural_similarity(a, b, data_range=max(rng, 1e-12), win_size=max(win, 3)))


def dice(pred_mask: np.ndarray, ref_mask: np.ndarray) -> float:
    """Dice coefficient of two binary masks (1.0 when both are empty)."""
    a, b = _check(pred_mask, ref_mask)
    a, b = a > 0.5, b > 0.5
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(a, b).sum() / total)
