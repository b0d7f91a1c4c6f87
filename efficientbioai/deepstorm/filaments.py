"""A structured test sample: emitters on microtubule-like filaments, as in the EPFL simulated
microtubule set Deep-STORM is evaluated on (361 high-density frames of 64×64 at 100 nm).

The filaments are :mod:`efficientbioai.smlm.filaments`' worm-like curves; in every frame a
Poisson number of emitters (the configured density per µm² of field) sits on them and is imaged
through the configured PSF and camera.
Training never sees these stacks: it uses uniformly placed emitters, like Deep-STORM's.
"""

from __future__ import annotations

import numpy as np

from efficientbioai.smlm.filaments import FilamentSection, filament_points
from efficientbioai.smlm.settings import SimulationSection


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
