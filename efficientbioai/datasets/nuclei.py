"""Synthetic nuclei images with instance labels, for training and scoring Cellpose here.

Nothing can be downloaded on the machines this project runs on, so the bundled Cellpose model
learns from images made here: elliptical nuclei of varied sizes and orientations, packed so
that many touch (later nuclei are drawn over earlier ones, sharing a boundary), with textured
chromatin, optical blur, uneven illumination and Poisson–Gaussian camera noise. Each split
uses its own seed range (:data:`SEED_OFFSETS`), so evaluation images are never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.draw import ellipse
from skimage.segmentation import find_boundaries

#: Seed ranges per split: image ``i`` of a split uses seed ``offset + i``.
SEED_OFFSETS = {"train": 0, "validation": 100_000, "calibration": 200_000, "evaluation": 300_000}


@dataclass(frozen=True)
class NucleiStyle:
    """How the generated nuclei look."""

    diameter: tuple[float, float] = (12.0, 26.0)  #: range in pixels (the mean of the two ellipse axes)
    elongation: tuple[float, float] = (1.0, 1.6)  #: range of the long/short axis ratio
    density: float = 1.6  #: nuclei per 1,000 pixels of image area (before overlap removal)
    touching: float = 0.5  #: fraction placed right next to an earlier nucleus, so they touch
    peak_photons: float = 60.0  #: mean photons at a nucleus' brightest pixels
    background: float = 8.0  #: photons per pixel
    read_sigma: float = 2.0  #: camera read noise (same units as photons)


def synthetic_nuclei(
    shape: tuple[int, int], seed: int, style: NucleiStyle | None = None, min_area: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """One noisy nuclei image (float32 photons) and its label image (int32, 0 = background).

    Parameters
    ----------
    shape : (int, int)
        Image size (rows, columns).
    seed : int
        Seed of the random generator: the same seed gives the same pair.
    style : NucleiStyle, optional
        Appearance; the default matches the bundled model's training data.
    min_area : int
        Label fragments smaller than this (pixels), left after overdrawing, are removed.

    Returns
    -------
    image, labels : ndarray
        ``image`` float32 of ``shape``; ``labels`` int32 with nuclei numbered 1..N.

    Examples
    --------
    >>> image, labels = synthetic_nuclei((96, 96), seed=0)
    >>> image.shape, labels.dtype.name, bool(labels.max() > 5)
    ((96, 96), 'int32', True)
    """
    if len(shape) != 2 or min(shape) < 16:
        raise ValueError(f"shape must be two sizes ≥ 16, got {shape}")
    style = style or NucleiStyle()
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    n = max(1, int(style.density * shape[0] * shape[1] / 1000))
    brightness = np.concatenate([[0.0], rng.uniform(0.5, 1.0, n)])
    centres: list[tuple[float, float, float]] = []
    for k in range(1, n + 1):
        d = rng.uniform(*style.diameter)
        e = rng.uniform(*style.elongation)
        r_long, r_short = d / 2 * np.sqrt(e), d / 2 / np.sqrt(e)
        if centres and rng.random() < style.touching:
            # next to an earlier nucleus: centre one mean radius-sum away, so the two touch
            cy, cx, r0 = centres[int(rng.integers(len(centres)))]
            angle = rng.uniform(0, 2 * np.pi)
            dist = 0.95 * (r0 + d / 2)
            cy, cx = cy + dist * np.sin(angle), cx + dist * np.cos(angle)
        else:
            cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        rr, cc = ellipse(cy, cx, r_long, r_short, shape=shape, rotation=rng.uniform(0, np.pi))
        if len(rr) == 0:
            continue
        labels[rr, cc] = k
        centres.append((cy, cx, d / 2))
    labels = _relabel(labels, min_area)
    image = _render(labels, brightness, style, rng)
    return image, renumber(labels)


def _relabel(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Keep the largest connected piece of each label if it has ≥ ``min_area`` pixels (ids are
    kept: brightness is indexed by them; :func:`renumber` makes them 1..N afterwards)."""
    out = np.zeros_like(labels)
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        region = labels[sl] == k
        parts, count = ndimage.label(region)
        if count > 1:
            sizes = ndimage.sum_labels(region, parts, range(1, count + 1))
            region = parts == (1 + int(np.argmax(sizes)))
        if region.sum() >= min_area:
            out[sl][region] = k
    return out


def _render(labels: np.ndarray, brightness: np.ndarray, style: NucleiStyle, rng: np.random.Generator) -> np.ndarray:
    """Photons per pixel: textured nuclei, blur, uneven illumination, Poisson + read noise."""
    shape = labels.shape
    level = brightness[labels] * (labels > 0)
    texture = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    texture = 1 + 0.35 * texture / (texture.std() + 1e-9)
    # each nucleus is a little brighter at its rim (nuclear envelope) and two touching nuclei are
    # separated by a dimmer line, as in real images; then optical blur
    rim = find_boundaries(labels, mode="inner") & (labels > 0)
    other = np.where(labels > 0, labels, labels.max() + 1)  # background never counts as a neighbour
    between = (labels > 0) & (ndimage.maximum_filter(labels, 3) != ndimage.minimum_filter(other, 3))
    clean = level * np.clip(texture, 0.2, None) * (1 + 0.2 * rim) * np.where(between, 0.55, 1.0)
    clean = ndimage.gaussian_filter(clean, 1.0)
    yy, xx = np.mgrid[: shape[0], : shape[1]] / max(shape)
    illumination = 1 + 0.3 * np.sin(2 * np.pi * (yy * rng.uniform(0.3, 1) + xx * rng.uniform(0.3, 1)))
    expected = clean * style.peak_photons * illumination + style.background
    return rng.poisson(expected).astype(np.float32) + rng.normal(0, style.read_sigma, shape).astype(np.float32)


def renumber(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 1..N in increasing order of their ids (0 stays background)."""
    ids = np.unique(labels)
    ids = ids[ids != 0]
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[labels]
