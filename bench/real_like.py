"""Real-like denoising pairs from images nobody here generated (scikit-image's bundled data).

The clean images are real: the Hubble deep field (point sources and extended objects, like
puncta and cells in widefield fluorescence) and a light micrograph of a cell. They are turned
into photon images (``peak`` photons over a background) and recorded through a simulated
sCMOS-like camera: Poisson shot noise, Gaussian read noise, an ADU offset. The network saw
none of them in training (it was trained on synthetic blobs and filaments). Crops do not
overlap, and each split (calibration, validation, evaluation) gets its own crops.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from skimage import color, data

TILE = 256


def _crops(image: np.ndarray, size: int) -> list[np.ndarray]:
    rows, cols = image.shape[0] // size, image.shape[1] // size
    return [image[r * size : (r + 1) * size, c * size : (c + 1) * size] for r in range(rows) for c in range(cols)]


def clean_crops() -> list[np.ndarray]:
    """13 non-overlapping 256² crops of real images, scaled to [0, 1]."""
    hubble = color.rgb2gray(data.hubble_deep_field())  # 872 × 1000 → 9 crops
    cell = data.cell().astype(np.float64) / 255.0  # 660 × 550 → 4 crops
    cell = cell.max() - cell  # bright structure on a dark ground, as in fluorescence
    return [(c - c.min()) / max(c.max() - c.min(), 1e-12) for c in _crops(hubble, TILE) + _crops(cell, TILE)]


def record(clean: np.ndarray, rng: np.random.Generator, peak: float = 40.0, background: float = 4.0) -> np.ndarray:
    """The camera's image (ADU) of ``clean``: Poisson(photons) + read noise 2 e⁻ + offset 100, gain 1."""
    photons = clean * peak + background
    return (rng.poisson(photons) + rng.normal(0, 2.0, clean.shape) + 100.0).astype(np.float32)


def write_splits(folder: Path, seed: int = 0) -> dict[str, tuple[Path, Path]]:
    """``{split: (inputs folder, targets folder)}`` for calibration (3), validation (4) and evaluation (6)."""
    rng = np.random.default_rng(seed)
    crops = clean_crops()
    order = {"calibration": [0, 4, 8], "validation": [1, 5, 9, 11], "evaluation": [2, 3, 6, 7, 10, 12]}
    out = {}
    for split, idx in order.items():
        raw, gt = folder / split / "raw", folder / split / "gt"
        raw.mkdir(parents=True, exist_ok=True)
        gt.mkdir(parents=True, exist_ok=True)
        for i in idx:
            tifffile.imwrite(raw / f"crop_{i:02d}.tif", record(crops[i], rng))
            tifffile.imwrite(gt / f"crop_{i:02d}.tif", crops[i].astype(np.float32))
        out[split] = (raw, gt)
    return out
