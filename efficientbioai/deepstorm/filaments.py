"""A structured test sample: emitters on microtubule-like filaments, as in the EPFL simulated
microtubule set Deep-STORM is evaluated on (361 high-density frames of 64×64 at 100 nm).

Filaments are smooth random curves (a worm-like chain: the direction turns by a Gaussian angle
of variance ``step / persistence`` per step) crossing the field of view. In every frame a
Poisson number of emitters (the configured density per µm² of field) sits at random points of
the filaments, displaced by the label size, and is imaged through the configured PSF and camera.
Training never sees these stacks: it uses uniformly placed emitters, like Deep-STORM's.
"""

from __future__ import annotations

import numpy as np

from efficientbioai.deepstorm.settings import FilamentSection
from efficientbioai.smlm.settings import SimulationSection


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


def simulate_filament_stack(
    sim: SimulationSection, spec: FilamentSection, n_frames: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Camera frames ``(T, H, W)`` (ADU, float32) and the truth table ``frame, x, y, z, photons``.

    Density (per µm² of the field) and photons are drawn per frame and emitter from ``sim``'s
    ranges, one background level per stack; z is 0 (a 2D sample).
    """
    rng = np.random.default_rng(seed)
    psf, camera = sim.psf.build(), sim.camera.build()
    shape = tuple(sim.frame_shape)
    field = (shape[0] * sim.pixel_size, shape[1] * sim.pixel_size)
    points = filament_points(field, spec, rng)
    area_um2 = field[0] * field[1] / 1e6
    background = rng.uniform(*sim.background)
    frames = np.empty((n_frames, *shape), np.float32)
    rows = []
    for t in range(n_frames):
        n = rng.poisson(rng.uniform(*sim.density_per_um2) * area_um2)
        xy = points[rng.integers(0, len(points), n)] + rng.normal(0.0, spec.label_sigma_nm, (n, 2))
        xy = xy[(xy[:, 0] >= 0) & (xy[:, 0] < field[1]) & (xy[:, 1] >= 0) & (xy[:, 1] < field[0])]
        photons = rng.uniform(*sim.photons, len(xy))
        xyz = np.column_stack([xy, np.zeros(len(xy))])
        frames[t] = camera.forward(psf.render(xyz, photons, shape, sim.pixel_size) + background, rng)
        rows.append(np.column_stack([np.full(len(xy), t + 1.0), xyz, photons]))
    truth = np.concatenate(rows) if rows else np.zeros((0, 5))
    return frames, truth
