"""Emitters bound to microtubule-like filaments: dense, structured SMLM samples.

In most real SMLM data (microtubules, actin) emitters crowd along filaments, so the local
density the detector faces is far above the field average. Filaments are smooth random curves
(a worm-like chain: the direction turns by a Gaussian angle of variance ``step / persistence``
per step) crossing the field; emitters sit at random points of them, displaced by the label
size. Deep-STORM's test stacks (``deepstorm/filaments.py``) and DilatedLoc's dense training
samples (``simulation.filament_fraction``) both draw from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from efficientbioai.section import Section


class FilamentSection(Section):
    """A microtubule-like sample: smooth random curves that emitters sit on."""

    count: int = Field(8, ge=1, le=1000, description="filaments in the field of view")
    persistence_nm: float = Field(4000.0, gt=0, description="bending stiffness of the random curves")
    step_nm: float = Field(10.0, gt=0, description="spacing of points along a filament")
    label_sigma_nm: float = Field(8.0, ge=0, description="label displacement from the filament axis (SD)")


def filament_points(field_nm: tuple[float, float], spec: FilamentSection, rng: np.random.Generator) -> np.ndarray:
    """Points ``(P, 2)`` (x, y in nm), evenly spaced along ``spec.count`` curves inside the field.

    Examples
    --------
    >>> pts = filament_points((6400.0, 6400.0), FilamentSection(count=2), np.random.default_rng(0))
    >>> pts.shape[1], bool((pts >= 0).all() and (pts <= 6400).all())
    (2, True)
    """
    h, w = field_nm
    steps = int(2 * (h + w) / spec.step_nm)
    curves = []
    for _ in range(spec.count):
        start = rng.uniform((0.0, 0.0), (w, h))
        angle = rng.uniform(0, 2 * np.pi)
        halves = []
        for turn in (0.0, np.pi):  # grow both ways from the start point
            a = angle + turn + np.cumsum(rng.normal(0.0, np.sqrt(spec.step_nm / spec.persistence_nm), steps))
            p = start + spec.step_nm * np.cumsum(np.column_stack([np.cos(a), np.sin(a)]), axis=0)
            inside = (p[:, 0] >= 0) & (p[:, 0] <= w) & (p[:, 1] >= 0) & (p[:, 1] <= h)
            stop = int(np.argmin(inside)) if not inside.all() else len(p)
            halves.append(p[:stop])
        curves.append(np.concatenate([halves[1][::-1], start[None], halves[0]]))
    return np.concatenate(curves)


@dataclass(frozen=True)
class FilamentSampler:
    """Draws one frame's emitters ``(N, 4)`` (x, y, z nm, photons) on fixed filament points,
    Poisson in number at ``density_per_um2`` of the whole field (the interface of
    :class:`~efficientbioai.smlm.simulate.EmitterSampler`)."""

    points: np.ndarray
    label_sigma_nm: float
    density_per_um2: float
    photons: tuple[float, float]
    z_range_nm: tuple[float, float] = (0.0, 0.0)

    def sample(self, shape: tuple[int, int], pixel_size: float, rng: np.random.Generator) -> np.ndarray:
        h, w = shape[0] * pixel_size, shape[1] * pixel_size
        n = rng.poisson(self.density_per_um2 * h * w / 1e6)
        xy = self.points[rng.integers(0, len(self.points), n)] + rng.normal(0.0, self.label_sigma_nm, (n, 2))
        xy = xy[(xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)]
        z = rng.uniform(*self.z_range_nm, len(xy))
        return np.column_stack([xy, z, rng.uniform(*self.photons, len(xy))])
