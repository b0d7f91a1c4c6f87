"""Single-emitter precision test: localization RMSE per z against the Cramér–Rao bound.

The CRLB bounds the precision of an *isolated* emitter of known brightness and background, so
the DilatedLoc paper (§4.1.1, after FD-DeepLoc) compares with it on a dedicated test set:
constant photons and background, emitters at 25 z positions spread uniformly over the axial
range, thousands per position. Scores on a crowded stack also contain assignment errors of
overlapping PSFs (a few matched pairs 50–130 nm off dominate the RMSE there), which no bound
for one emitter describes; the challenge-style stack scores stay the measure of those.

Here emitters sit on a jittered grid (``spacing_px`` apart, far beyond the PSF) so that every
frame holds many isolated emitters of one z; frames come from their own seed range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from efficientbioai.smlm.crlb import simulation_crlb
from efficientbioai.smlm.localization_metrics import match_localizations
from efficientbioai.smlm.simulated_training import SEEDS


@dataclass(frozen=True)
class PrecisionRow:
    """Scores of one z position (nm; ``lateral`` values are per axis, as the CRLB)."""

    z: float
    emitters: int
    found: int
    rmse_lateral: float
    rmse_axial: float
    crlb_lateral: float
    crlb_axial: float


def simulate_precision_stack(
    sim,
    z_nm: np.ndarray,
    per_z: int = 120,
    photons: float = 5000.0,
    background: float = 20.0,
    spacing_px: int = 16,
    seed: int = SEEDS["precision"],
) -> tuple[np.ndarray, np.ndarray]:
    """Frames of isolated emitters, one z per frame, and their truth table.

    Parameters
    ----------
    sim : SimulationSection
        Pixel size, frame shape, PSF and camera of the microscope.
    z_nm : array of float
        Axial positions to test.
    per_z : int
        Emitters per z position.
    photons, background : float
        Constant emitter photons and background photons per pixel (before detection).
    spacing_px : int
        Grid spacing; each emitter is jittered by up to a quarter of it.
    seed : int
        Seed of the random jitter and noise.

    Returns
    -------
    frames : ndarray (T, H, W) float32, ADU
    truth : ndarray (N, 5): frame (1-based), x, y, z (nm), photons

    Examples
    --------
    >>> from efficientbioai.smlm.settings import SimulationSection
    >>> frames, truth = simulate_precision_stack(SimulationSection(), np.array([0.0]), per_z=20)
    >>> frames.shape, truth.shape
    ((2, 64, 64), (20, 5))
    """
    h, w = sim.frame_shape
    if spacing_px < 4 or min(h, w) < spacing_px:
        raise ValueError(f"spacing_px must be at least 4 and at most the frame size {h}×{w}, got {spacing_px}")
    if per_z < 1:
        raise ValueError(f"per_z must be positive, got {per_z}")
    rng = np.random.default_rng(seed)
    psf, camera, px = sim.psf.build(), sim.camera.build(), sim.pixel_size
    centres = [np.arange(spacing_px / 2, side, spacing_px) for side in (h, w)]
    gy, gx = np.meshgrid(*centres, indexing="ij")
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    per_frame = len(grid)
    frames, truth = [], []
    for z in np.atleast_1d(np.asarray(z_nm, dtype=float)):
        for start in range(0, per_z, per_frame):
            n = min(per_frame, per_z - start)
            xy = (grid[:n] + rng.uniform(-spacing_px / 4, spacing_px / 4, (n, 2))) * px
            em = np.column_stack([xy, np.full(n, z)])
            expected = psf.render(em, np.full(n, photons), (h, w), px) + background
            frames.append(camera.forward(expected, rng).astype(np.float32))
            truth.append(np.column_stack([np.full(n, len(frames)), em, np.full(n, photons)]))
    return np.stack(frames), np.concatenate(truth)


def precision_vs_crlb(
    pred: np.ndarray,
    truth: np.ndarray,
    sim,
    photons: float,
    background: float,
) -> list[PrecisionRow]:
    """RMSE per z of the matched localizations and the CRLB at that z (detected photons: the
    camera's QE applied to signal and background, EMCCD excess noise included).

    ``pred`` and ``truth`` are tables ``frame, x, y, z (nm), ...``; ``truth`` as written by
    :func:`simulate_precision_stack` (one z per frame).
    """
    pi, gi = match_localizations(pred, truth)
    d = np.asarray(pred, float)[pi, 1:4] - truth[gi, 1:4]
    zs = np.unique(truth[:, 3])
    bounds = simulation_crlb(sim, zs, photons, background)
    rows = []
    for z, bound in zip(zs, bounds):
        sel = truth[gi, 3] == z
        nan = not sel.any()
        rows.append(
            PrecisionRow(
                z=float(z),
                emitters=int((truth[:, 3] == z).sum()),
                found=int(sel.sum()),
                rmse_lateral=np.nan if nan else float(np.sqrt(np.mean((d[sel, 0] ** 2 + d[sel, 1] ** 2) / 2))),
                rmse_axial=np.nan if nan else float(np.sqrt(np.mean(d[sel, 2] ** 2))),
                crlb_lateral=float(np.sqrt((bound[0] ** 2 + bound[1] ** 2) / 2)),
                crlb_axial=float(bound[2]),
            )
        )
    return rows


def summarize(rows: list[PrecisionRow]) -> dict[str, float]:
    """Mean RMSE and mean CRLB over z, their ratio (the "within k× the mean CRLB" figure), recall."""
    get = {k: np.array([asdict(r)[k] for r in rows], float) for k in asdict(rows[0])}
    out = {
        "recall": float(get["found"].sum() / get["emitters"].sum()),
        "rmse_lateral": float(np.nanmean(get["rmse_lateral"])),
        "crlb_lateral": float(np.mean(get["crlb_lateral"])),
        "rmse_axial": float(np.nanmean(get["rmse_axial"])),
        "crlb_axial": float(np.nanmean(get["crlb_axial"])) if np.isfinite(get["crlb_axial"]).any() else np.nan,
    }
    out["ratio_lateral"] = out["rmse_lateral"] / out["crlb_lateral"]
    out["ratio_axial"] = out["rmse_axial"] / out["crlb_axial"] if np.isfinite(out["crlb_axial"]) else np.nan
    return out


def precision_test(
    localize: Callable[[np.ndarray], np.ndarray],
    sim,
    positions: int = 25,
    per_z: int = 120,
    photons: float | None = None,
    background: float | None = None,
) -> tuple[list[PrecisionRow], dict[str, float]]:
    """Run ``localize`` (stack ``(T, H, W)`` → table) on the precision stack and score it.

    ``positions`` z values spread uniformly over ``sim.z_range_nm`` (one at z = 0 for 2D);
    photons and background default to the middle of the test section's ranges.
    """
    test = sim.for_test()
    photons = float(np.mean(test.photons)) if photons is None else float(photons)
    background = float(np.mean(test.background)) if background is None else float(background)
    lo, hi = sim.z_range_nm
    z = np.linspace(lo, hi, positions) if hi > lo else np.zeros(1)
    frames, truth = simulate_precision_stack(sim, z, per_z, photons, background)
    rows = precision_vs_crlb(localize(frames), truth, sim, photons, background)
    return rows, summarize(rows)
