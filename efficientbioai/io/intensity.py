"""Intensity normalisation applied before a network sees an image."""

from __future__ import annotations

import numpy as np


def percentile_normalize(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Map the ``low``/``high`` percentiles to 0/1 (values outside are kept, not clipped).

    Examples
    --------
    >>> x = np.arange(100, dtype=np.float32)
    >>> y = percentile_normalize(x, 0, 100); float(y.min()), float(y.max())
    (0.0, 1.0)
    """
    lo, hi = np.percentile(image, [low, high])
    return ((image - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def zscore_normalize(image: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation."""
    return ((image - image.mean()) / max(float(image.std()), 1e-6)).astype(np.float32)


def normalize(image: np.ndarray, kind: str, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Dispatch on ``kind`` (``percentile``, ``zscore`` or ``none``)."""
    if kind == "percentile":
        return percentile_normalize(image, low, high)
    if kind == "zscore":
        return zscore_normalize(image)
    if kind == "none":
        return image.astype(np.float32, copy=False)
    raise ValueError(f"unknown normalisation {kind!r}; use percentile, zscore or none")
