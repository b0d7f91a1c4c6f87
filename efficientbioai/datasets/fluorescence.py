"""Synthetic fluorescence images: blobs and filaments under Poisson–Gaussian camera noise.

No microscopy data can be downloaded on the machines this project runs on, so the bundled
denoisers are trained and evaluated on images made here. Training, calibration and evaluation
use disjoint seed ranges (see ``SEED_OFFSETS``) so no evaluation image is ever seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Seed ranges per split: a split's images use seeds ``offset + index``.
SEED_OFFSETS = {"train": 0, "validation": 500_000, "calibration": 1_000_000, "evaluation": 2_000_000}


@dataclass(frozen=True)
class NoiseModel:
    """Poisson–Gaussian camera: ``ADU = Poisson(peak·clean + background) + N(0, read_sigma)``."""

    peak_photons: float = 30.0
    background: float = 5.0
    read_sigma: float = 2.0


def _filaments(shape: tuple[int, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` smooth random-walk curves into a zero array of ``shape``."""
    out = np.zeros(shape, dtype=np.float32)
    dims = len(shape)
    size = np.array(shape, dtype=float)
    for _ in range(n):
        pos = rng.uniform(0, 1, dims) * size
        direction = rng.normal(size=dims)
        direction /= np.linalg.norm(direction) + 1e-9
        steps = int(rng.integers(int(size.max()), 3 * int(size.max())))
        brightness = rng.uniform(0.4, 1.0)
        for _ in range(steps):
            direction += rng.normal(scale=0.15, size=dims)
            direction /= np.linalg.norm(direction) + 1e-9
            pos = pos + 0.5 * direction
            idx = np.round(pos).astype(int)
            if np.any(idx < 0) or np.any(idx >= size):
                break
            out[tuple(idx)] = max(out[tuple(idx)], brightness)
    return out


def _blobs(shape: tuple[int, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian spots of three size classes (vesicles to nuclei-like), ``n`` in total."""
    out = np.zeros(shape, dtype=np.float32)
    for sigma, share in ((1.0, 0.6), (2.5, 0.3), (5.0, 0.1)):
        layer = np.zeros(shape, dtype=np.float32)
        count = max(1, int(n * share))
        idx = tuple(rng.integers(0, s, count) for s in shape)
        layer[idx] = rng.uniform(0.3, 1.0, count).astype(np.float32) * (2 * np.pi * sigma**2) ** (len(shape) / 2)
        out += ndimage.gaussian_filter(layer, sigma)
    return out


def clean_image(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A noise-free fluorescence-like image in [0, 1] of ``shape`` (2D or 3D)."""
    volume = float(np.prod(shape))
    n_blobs = int(rng.uniform(0.5, 1.5) * volume / (400 if len(shape) == 2 else 4000))
    n_fil = int(rng.integers(3, 10))
    img = _blobs(shape, n_blobs, rng) + ndimage.gaussian_filter(_filaments(shape, n_fil, rng), 1.0) * 4
    img = np.clip(img, 0, None)
    top = np.percentile(img, 99.9)
    return np.clip(img / (top + 1e-6), 0, 1).astype(np.float32)


def noisy_image(clean: np.ndarray, noise: NoiseModel, rng: np.random.Generator) -> np.ndarray:
    """Camera image (ADU, float32) of ``clean`` under ``noise``."""
    photons = rng.poisson(clean * noise.peak_photons + noise.background).astype(np.float32)
    return photons + rng.normal(0.0, noise.read_sigma, clean.shape).astype(np.float32)


def make_pair(shape: tuple[int, ...], seed: int, noise: NoiseModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(noisy, clean)`` for one seed; deterministic.

    Examples
    --------
    >>> noisy, clean = make_pair((64, 64), seed=3)
    >>> noisy.shape, clean.dtype
    ((64, 64), dtype('float32'))
    """
    rng = np.random.default_rng(seed)
    clean = clean_image(tuple(shape), rng)
    return noisy_image(clean, noise or NoiseModel(), rng), clean
