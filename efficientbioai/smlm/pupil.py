"""Scalar pupil-function PSF with Zernike aberrations (engineered PSFs: astigmatic, saddle-point,
tetrapod).

The pupil is a disc of radius NA/λ in spatial frequency; aberrations add a phase
2π·W(ρ, θ)/λ with W = Σ c_nm·Z_n^m (c in nm, Zernike polynomials normalised to unit peak);
defocus z adds 2π·k_z·z with k_z = √((n/λ)² − k²). The image is |FFT(pupil)|² on a grid
``oversample`` times finer than the camera, summed into camera pixels (pixel integration) and
optionally blurred (DilatedLoc blurs its PSF with σ = 0.5 px). It is a scalar model: the
vectorial (polarisation) corrections at NA 1.49 are not included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import comb

import numpy as np
from scipy import ndimage

#: Zernike coefficients (nm) of the engineered PSFs in the DilatedLoc paper (SMLM_NOTES.md).
PRESETS: dict[str, dict[tuple[int, int], float]] = {
    "astigmatic": {(2, 2): 70.0},
    "saddle_point": {(2, -2): 114.4, (4, -2): -155.5, (6, -2): -11.9},
    "tetrapod_6um": {(2, -2): 52.8, (4, -2): -269.2, (6, -2): -27.1},
    # Not in the notes: half the 6 µm coefficients, which halves the design's axial range.
    "tetrapod_3um": {(2, -2): 26.4, (4, -2): -134.6, (6, -2): -13.55},
}


def zernike(n: int, m: int, rho: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Zernike polynomial Z_n^m (unit peak; m < 0: sine terms) on the unit disc."""
    if (n - abs(m)) % 2 or abs(m) > n:
        raise ValueError(f"Zernike (n={n}, m={m}) needs |m| ≤ n and n − |m| even")
    radial = np.zeros_like(rho)
    for k in range((n - abs(m)) // 2 + 1):  # (n−k)! / (k! ((n+|m|)/2 − k)! ((n−|m|)/2 − k)!), an integer
        radial += (-1) ** k * comb(n - k, k) * comb(n - 2 * k, (n + abs(m)) // 2 - k) * rho ** (n - 2 * k)
    return radial * (np.cos(m * theta) if m >= 0 else np.sin(-m * theta))


@dataclass(frozen=True)
class PupilPSF:
    """Scalar pupil PSF. ``render`` has the same signature as the Gaussian PSFs'."""

    na: float = 1.49
    wavelength_nm: float = 660.0
    n_immersion: float = 1.518
    zernike_nm: dict[tuple[int, int], float] = field(default_factory=lambda: dict(PRESETS["astigmatic"]))
    pupil_size: int = 64
    oversample: int = 3
    patch_px: int = 21
    blur_px: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.na < self.n_immersion:
            raise ValueError(f"NA must be in (0, n_immersion={self.n_immersion}), got {self.na}")

    def patch(self, dx_px: float, dy_px: float, z_nm: float, pixel_size: float) -> np.ndarray:
        """Normalised PSF on a ``patch_px`` square of camera pixels, emitter offset from its centre."""
        n = self.pupil_size * self.oversample
        d = pixel_size / self.oversample  # image-plane sample spacing (nm)
        k = np.fft.fftfreq(n, d)  # cycles/nm
        kx, ky = np.meshgrid(k, k)
        kr = np.hypot(kx, ky)
        cutoff = self.na / self.wavelength_nm
        if cutoff >= 0.5 / d:
            raise ValueError("pixel_size / oversample is too coarse for this NA and wavelength")
        inside = kr <= cutoff
        rho, theta = kr / cutoff, np.arctan2(ky, kx)
        w = sum(c * zernike(nn, mm, rho, theta) for (nn, mm), c in self.zernike_nm.items())
        kz = np.sqrt(np.clip((self.n_immersion / self.wavelength_nm) ** 2 - kr**2, 0, None))
        shift = kx * dx_px * pixel_size + ky * dy_px * pixel_size
        phase = 2 * np.pi * (np.asarray(w) / self.wavelength_nm + kz * z_nm - shift)
        pupil = np.where(inside, np.exp(1j * phase), 0)
        field_ = np.fft.fftshift(np.fft.ifft2(pupil))
        intensity = np.abs(field_) ** 2
        intensity /= intensity.sum()  # all light reaching the (periodic) image plane
        c = n // 2
        half = (self.patch_px // 2) * self.oversample + self.oversample // 2  # emitter mid-pixel
        window = slice(c - half, c - half + self.patch_px * self.oversample)
        crop = intensity[window, window]
        binned = crop.reshape(self.patch_px, self.oversample, self.patch_px, self.oversample).sum((1, 3))
        return ndimage.gaussian_filter(binned, self.blur_px, mode="constant") if self.blur_px else binned

    def render(self, xyz_nm: np.ndarray, photons: np.ndarray, shape: tuple[int, int], pixel_size: float) -> np.ndarray:
        """Expected photons per pixel from emitters ``(N, 3)`` in nm (see :mod:`efficientbioai.smlm.psf`)."""
        out = np.zeros((shape[0] + 2 * self.patch_px, shape[1] + 2 * self.patch_px), np.float64)
        for (x, y, z), ph in zip(np.asarray(xyz_nm, float).reshape(-1, 3), np.asarray(photons, float).ravel()):
            col, row = x / pixel_size - 0.5, y / pixel_size - 0.5  # pixel coordinates of the centre
            ic, ir = int(np.round(col)), int(np.round(row))
            p = self.patch(col - ic, row - ir, z, pixel_size) * ph
            r0, c0 = ir - self.patch_px // 2 + self.patch_px, ic - self.patch_px // 2 + self.patch_px
            out[r0 : r0 + self.patch_px, c0 : c0 + self.patch_px] += p
        return out[self.patch_px : -self.patch_px, self.patch_px : -self.patch_px].astype(np.float32)
