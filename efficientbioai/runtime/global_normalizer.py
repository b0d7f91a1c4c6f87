"""Normalising a volume block by block with statistics of the whole volume.

``BaseParser.preprocess`` normalises an image with its own percentiles (or mean and SD). A
volume streamed in blocks must not be normalised per block — each block would get its own
contrast. :class:`GlobalNormalizer` estimates the statistics once, per channel, from an evenly
strided subsample of the whole volume (at most ``max_samples`` voxels, read plane by plane), and
applies them to every block.

Examples
--------
>>> v = np.arange(4000, dtype=np.float32).reshape(1, 10, 20, 20)
>>> n = GlobalNormalizer("percentile", 0.0, 100.0).fit(v)
>>> float(n(v).min()), float(n(v).max())
(0.0, 1.0)
"""

from __future__ import annotations

import numpy as np


class GlobalNormalizer:
    """Per-channel normalisation fitted on a subsample of a (lazily read) ``(C, *spatial)`` volume."""

    def __init__(self, kind: str, low: float = 1.0, high: float = 99.8, max_samples: int = 4_000_000) -> None:
        if kind not in ("percentile", "zscore", "none"):
            raise ValueError(f"unknown normalisation {kind!r}; use percentile, zscore or none")
        self.kind, self.low, self.high, self.max_samples = kind, low, high, max_samples
        self.stats: list[tuple[float, float]] = []

    def fit(self, volume) -> GlobalNormalizer:
        """Estimate the statistics of each channel of ``volume`` (``(C, *spatial)``, sliceable)."""
        if self.kind == "none":
            return self
        shape = volume.shape
        step = max(1, int(np.ceil((np.prod(shape, dtype=np.float64) / self.max_samples) ** (1 / (len(shape) - 1)))))
        rest = tuple(slice(None, None, step) for _ in shape[2:])
        self.stats = []
        for c in range(shape[0]):
            planes = [  # plane by plane along the first spatial axis: a lazy source reads only these
                np.asarray(volume[(slice(c, c + 1), slice(z, z + 1), *rest)], np.float32).ravel()
                for z in range(0, shape[1], step)
            ]
            sample = np.concatenate(planes)
            if self.kind == "percentile":
                lo, hi = np.percentile(sample, [self.low, self.high])
                self.stats.append((float(lo), float(max(hi - lo, 1e-6))))
            else:
                self.stats.append((float(sample.mean()), float(max(sample.std(), 1e-6))))
        return self

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """``block`` ``(C, *spatial)`` normalised with the fitted statistics, float32."""
        block = np.asarray(block, np.float32)
        if self.kind == "none":
            return block
        out = np.empty_like(block)
        for c, (shift, scale) in enumerate(self.stats):
            out[c] = (block[c] - shift) / scale
        return out
