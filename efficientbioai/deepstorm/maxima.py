"""Localizations from a super-resolution image: local maxima, refined by a 3×3 centroid.

Deep-STORM's output is an image, not a list; a list is still handy for tools that read SMLM
CSV files. Maxima of the *summed* image carry no frame number: every row gets frame 1 and the
summed intensity at the maximum in the ``photons`` column (arbitrary units).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def local_maxima(image: np.ndarray, fine_pixel: float, threshold: float = 0.1, size: int = 3) -> np.ndarray:
    """Table ``frame, x, y, z, intensity, uncertainty`` (nm) of the maxima of ``image``.

    A pixel is kept if it is the maximum of its ``size × size`` neighbourhood and above
    ``threshold × image.max()``; its position is the intensity-weighted centroid of its 3×3
    neighbourhood (pixel centres at ``(col + 0.5) · fine_pixel``).

    Examples
    --------
    >>> img = np.zeros((16, 16)); img[4, 10] = 1.0
    >>> local_maxima(img, 12.5)[:, 1:3].tolist()
    [[131.25, 56.25]]
    """
    img = np.asarray(image, np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected a 2D image, got shape {img.shape}")
    top = img.max() if img.size else 0.0
    if top <= 0:
        return np.zeros((0, 6))
    peaks = (img == ndimage.maximum_filter(img, size=size, mode="constant")) & (img > threshold * top)
    rows, cols = np.nonzero(peaks)
    padded = np.pad(np.clip(img, 0, None), 1)
    offsets = np.arange(-1, 2)
    win = np.stack([[padded[rows + 1 + dr, cols + 1 + dc] for dc in offsets] for dr in offsets])  # (3, 3, n)
    weight = win.sum(axis=(0, 1))
    dy = (win.sum(axis=1) * offsets[:, None]).sum(0) / weight
    dx = (win.sum(axis=0) * offsets[:, None]).sum(0) / weight
    x = (cols + 0.5 + dx) * fine_pixel
    y = (rows + 0.5 + dy) * fine_pixel
    n = len(rows)
    return np.column_stack([np.ones(n), x, y, np.zeros(n), img[rows, cols], np.full(n, np.nan)])
