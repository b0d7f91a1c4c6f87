"""Camera noise models for SMLM frames: EMCCD and sCMOS, as in DECODE's simulator.

Photons → electrons → (EM gain) → read noise → ADU:
``clamp≥0 → Poisson(QE·photons + spurious) → [EMCCD: Gamma(shape=e⁻, scale=gain)] →
+ Normal(0, read σ) → / (e⁻ per ADU) → floor → + baseline → clamp≥0``.
For sCMOS the EM gain is ``None`` (not 0 or 1: DECODE issue #69 divides by it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Camera parameters; defaults are the 2016 SMLM-challenge EMCCD."""

    qe: float = 0.9  #: quantum efficiency (electrons per photon)
    em_gain: float | None = 300.0  #: EMCCD electron-multiplying gain; None for sCMOS/CCD
    e_per_adu: float = 45.0  #: electrons per analog-digital unit
    baseline: float = 100.0  #: offset added to every pixel (ADU)
    read_sigma: float = 74.4  #: read noise (electrons, after gain)
    spurious: float = 0.002  #: spurious charge (electrons per pixel per frame)

    def __post_init__(self) -> None:
        if self.em_gain is not None and self.em_gain <= 0:
            raise ValueError("em_gain must be positive, or None for an sCMOS/CCD camera")
        if not 0 < self.qe <= 1:
            raise ValueError(f"qe must be in (0, 1], got {self.qe}")
        if self.e_per_adu <= 0:
            raise ValueError(f"e_per_adu must be positive, got {self.e_per_adu}")

    def forward(self, photons: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy camera frame (ADU, float32) from an expected photon image."""
        electrons = rng.poisson(self.qe * np.clip(photons, 0, None) + self.spurious).astype(np.float64)
        if self.em_gain is not None:
            positive = electrons > 0  # the rest hold 0 electrons, and stay 0
            electrons[positive] = rng.gamma(electrons[positive], self.em_gain)
        electrons = electrons + rng.normal(0.0, self.read_sigma, electrons.shape)
        adu = np.floor(electrons / self.e_per_adu) + self.baseline
        return np.clip(adu, 0, None).astype(np.float32)

    def to_photons(self, adu: np.ndarray) -> np.ndarray:
        """Inverse of the mean response: ADU → expected photons (for normalisation and display)."""
        gain = self.em_gain if self.em_gain is not None else 1.0
        return ((np.asarray(adu, np.float32) - self.baseline) * self.e_per_adu / gain / self.qe).astype(np.float32)


#: A typical sCMOS (no EM gain, low read noise).
SCMOS = Camera(qe=0.8, em_gain=None, e_per_adu=0.5, baseline=100.0, read_sigma=1.5, spurious=0.0)
#: The 2016 SMLM-challenge EMCCD.
EMCCD = Camera()
