"""Simulated SMLM stacks with ground truth in nanometres.

Emitters are drawn per frame at a density per µm² (Poisson-distributed count) inside the
field of view less a margin, with photons and z from uniform ranges, rendered through a PSF,
offset by a uniform background, and passed through a camera model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from efficientbioai.smlm.camera import Camera
from efficientbioai.smlm.psf import GaussianPSF


@dataclass(frozen=True)
class EmitterSampler:
    """How emitters are drawn for each frame."""

    density_per_um2: float = 1.0  #: mean emitters per µm² of the sampled area
    photons: tuple[float, float] = (1000.0, 5000.0)  #: uniform range of photons per emitter per frame
    z_range_nm: tuple[float, float] = (0.0, 0.0)  #: uniform range of z ((0, 0) for 2D)
    margin_px: float = 1.0  #: border (pixels) kept free of emitter centres

    def sample(self, shape: tuple[int, int], pixel_size: float, rng: np.random.Generator) -> np.ndarray:
        """``(N, 4)`` array of x, y, z (nm) and photons for one frame."""
        h, w = shape
        m = self.margin_px * pixel_size
        area_um2 = max(w * pixel_size - 2 * m, 0) * max(h * pixel_size - 2 * m, 0) / 1e6
        n = rng.poisson(self.density_per_um2 * area_um2)
        x = rng.uniform(m, w * pixel_size - m, n)
        y = rng.uniform(m, h * pixel_size - m, n)
        z = rng.uniform(*self.z_range_nm, n)
        ph = rng.uniform(*self.photons, n)
        return np.stack([x, y, z, ph], axis=1)


def simulate_stack(
    n_frames: int,
    shape: tuple[int, int],
    pixel_size: float = 100.0,
    psf: GaussianPSF | None = None,
    emitters: EmitterSampler | None = None,
    background: float | tuple[float, float] = 50.0,
    camera: Camera | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A stack of camera frames and its ground truth.

    Returns
    -------
    frames : ndarray, float32, (n_frames, H, W)
        Camera frames in ADU.
    truth : ndarray, float64, (N, 5)
        One row per emitter: ``frame`` (1-based), ``x``, ``y``, ``z`` (nm), ``photons``.

    Examples
    --------
    >>> frames, truth = simulate_stack(3, (32, 32), seed=1)
    >>> frames.shape, truth.shape[1]
    ((3, 32, 32), 5)
    """
    if n_frames < 1 or min(shape) < 1:
        raise ValueError(f"need at least one frame of positive size, got {n_frames} × {shape}")
    psf = psf or GaussianPSF()
    emitters = emitters or EmitterSampler()
    camera = camera or Camera()
    rng = np.random.default_rng(seed)
    frames = np.empty((n_frames, *shape), np.float32)
    rows = []
    for t in range(n_frames):
        em = emitters.sample(shape, pixel_size, rng)
        bg = rng.uniform(*background) if isinstance(background, tuple) else background
        expected = psf.render(em[:, :3], em[:, 3], shape, pixel_size) + bg
        frames[t] = camera.forward(expected, rng)
        rows.append(np.column_stack([np.full(len(em), t + 1.0), em]))
    truth = np.concatenate(rows) if rows else np.zeros((0, 5))
    return frames, truth
