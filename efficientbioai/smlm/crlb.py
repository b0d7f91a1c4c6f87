"""Cramér–Rao lower bound of localization precision for any PSF with a ``render`` method.

Parameters θ = (x, y, z, N, b); expected counts μ_k = N·PSF_k(x, y, z) + b per pixel. With
Poisson noise the Fisher information is I_ij = Σ_k ∂μ_k/∂θ_i · ∂μ_k/∂θ_j / μ_k and the bound is
√diag(I⁻¹). An EMCCD's excess noise doubles the variance (×√2 on the bound). ∂μ/∂N and ∂μ/∂b
are exact; the position derivatives are central differences of the pixel-integrated PSF, which
works the same for the Gaussian, astigmatic and pupil-function models. N and b count *detected*
photons: pass photons × the camera's QE for a simulated emitter.
"""

from __future__ import annotations

import numpy as np

PARAMETERS = ("x", "y", "z", "photons", "background")


def crlb(
    psf,
    z_nm: np.ndarray,
    photons: float = 2000.0,
    background: float = 20.0,
    pixel_size: float = 100.0,
    roi: int = 15,
    emccd: bool = True,
    step_nm: float = 2.0,
) -> np.ndarray:
    """Bounds (nm for x, y, z; photons for N and b) for an emitter at the ROI centre, per z.

    Returns an array ``(len(z_nm), 5)`` with columns :data:`PARAMETERS`; the z bound is NaN
    where the PSF carries no axial information (a symmetric Gaussian).

    Examples
    --------
    >>> from efficientbioai.smlm.psf import GaussianPSF
    >>> b = crlb(GaussianPSF(130.0), np.array([0.0]), photons=5000, background=1, emccd=False)
    >>> bool(1.5 < b[0, 0] < 2.5)  # close to Thompson's √((s² + a²/12)/N) ≈ 1.9 nm
    True
    """
    centre = roi * pixel_size / 2
    out = []
    for z in np.atleast_1d(np.asarray(z_nm, dtype=float)):

        def unit(dx: float = 0.0, dy: float = 0.0, dz: float = 0.0, z: float = z) -> np.ndarray:
            xyz = np.array([[centre + dx, centre + dy, z + dz]])
            return psf.render(xyz, np.array([1.0]), (roi, roi), pixel_size).astype(np.float64).ravel()

        grads = [photons * (unit(*d) - unit(*-d)) / (2 * step_nm) for d in step_nm * np.eye(3)]
        grads += [unit(), np.ones(roi * roi)]
        jac = np.stack(grads, axis=1)
        mu = photons * unit() + background
        fisher = (jac / mu[:, None]).T @ jac
        axial = np.abs(grads[2]).sum() > 1e-9 * np.abs(grads[0]).sum()
        if not axial:
            fisher[2, 2] = 1.0  # z is not identifiable; keep the matrix invertible
        bound = np.sqrt(np.clip(np.diag(np.linalg.pinv(fisher)), 0, None)) * (np.sqrt(2) if emccd else 1.0)
        if not axial:
            bound[2] = np.nan
        out.append(bound)
    return np.asarray(out)


def simulation_crlb(sim, z_nm: np.ndarray, photons: float, background: float) -> np.ndarray:
    """:func:`crlb` for an emitter of a simulated microscope (a ``SimulationSection``): its PSF
    and pixel size, ``photons`` and ``background`` as emitted (the camera's QE turns them into
    detected photons, as the simulator does) and the EMCCD excess noise if the camera has gain."""
    qe = sim.camera.qe
    return crlb(
        sim.psf.build(), z_nm, qe * photons, qe * background, sim.pixel_size, emccd=sim.camera.em_gain is not None
    )
