"""Point-spread functions integrated over camera pixels.

Coordinates are in nanometres with the origin at the top-left corner of pixel (0, 0): pixel
``(row, col)`` covers ``[col·p, (col+1)·p) × [row·p, (row+1)·p)`` for pixel size ``p``, so its
centre is at ``x = (col + 0.5)·p`` (the ThunderSTORM / SMLM-challenge convention).

The Gaussian PSFs are separable, so a frame is an outer product of per-axis pixel integrals
(differences of the normal CDF at pixel edges), computed for all emitters at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr


@dataclass(frozen=True)
class GaussianPSF:
    """Symmetric 2D Gaussian of standard deviation ``sigma_nm`` (z is ignored).

    Examples
    --------
    >>> psf = GaussianPSF(sigma_nm=130.0)
    >>> img = psf.render(np.array([[800.0, 800.0, 0.0]]), np.array([1000.0]), (16, 16), 100.0)
    >>> round(float(img.sum()))  # all photons land inside the frame
    1000
    """

    sigma_nm: float = 130.0

    def sigmas(self, z_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lateral widths ``(σx, σy)`` in nm for each emitter's ``z``."""
        s = np.full(np.shape(z_nm), self.sigma_nm, dtype=np.float64)
        return s, s

    def render(self, xyz_nm: np.ndarray, photons: np.ndarray, shape: tuple[int, int], pixel_size: float) -> np.ndarray:
        """Expected photons per pixel of ``shape`` (rows, cols) from emitters ``(N, 3)`` in nm."""
        xyz_nm = np.asarray(xyz_nm, dtype=np.float64).reshape(-1, 3)
        photons = np.asarray(photons, dtype=np.float64).reshape(-1)
        if len(xyz_nm) != len(photons):
            raise ValueError(f"{len(xyz_nm)} positions but {len(photons)} photon counts")
        if len(xyz_nm) == 0:
            return np.zeros(shape, np.float32)
        sx, sy = self.sigmas(xyz_nm[:, 2])
        px = _axis_integrals(xyz_nm[:, 0], sx, shape[1], pixel_size)
        py = _axis_integrals(xyz_nm[:, 1], sy, shape[0], pixel_size)
        return np.einsum("n,nh,nw->hw", photons, py, px).astype(np.float32)


@dataclass(frozen=True)
class AstigmaticPSF(GaussianPSF):
    """Elliptical Gaussian whose widths change with z (a cylindrical lens):

    ``σx = σ0·√(1 + ((z + c)/d)²)``, ``σy = σ0·√(1 + ((z − c)/d)²)`` (nm), the form used by
    DECODE and the SMLM challenge (``c`` = 250 nm focal offset, ``d`` = 280 nm depth).
    """

    focal_offset_nm: float = 250.0
    depth_nm: float = 280.0

    def sigmas(self, z_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = np.asarray(z_nm, dtype=np.float64)
        sx = self.sigma_nm * np.sqrt(1 + ((z + self.focal_offset_nm) / self.depth_nm) ** 2)
        sy = self.sigma_nm * np.sqrt(1 + ((z - self.focal_offset_nm) / self.depth_nm) ** 2)
        return sx, sy


def _axis_integrals(centre_nm: np.ndarray, sigma_nm: np.ndarray, n: int, pixel_size: float) -> np.ndarray:
    """Fraction of each emitter's Gaussian falling in each of ``n`` pixels along one axis."""
    edges = np.arange(n + 1, dtype=np.float64) * pixel_size
    cdf = ndtr((edges[None, :] - centre_nm[:, None]) / sigma_nm[:, None])
    return np.diff(cdf, axis=1)
