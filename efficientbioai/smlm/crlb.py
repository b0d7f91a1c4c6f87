"""Cramér–Rao lower bound of localization precision for the pixel-integrated PSF models.

Parameters θ = (x, y, z, N, b); expected counts μ_k = N·PSF_k(x, y, z) + b per pixel. With
Poisson noise the Fisher information is I_ij = Σ_k ∂μ_k/∂θ_i · ∂μ_k/∂θ_j / μ_k and the bound is
√diag(I⁻¹). An EMCCD's excess noise doubles the variance (×√2 on the bound). Derivatives come
from autograd over a torch copy of the PSF integrals, so any PSF with a torch ``render`` works.
"""

from __future__ import annotations

import numpy as np
import torch

from efficientbioai.smlm.psf import AstigmaticPSF, GaussianPSF

PARAMETERS = ("x", "y", "z", "photons", "background")


def _torch_sigmas(psf: GaussianPSF, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(psf, AstigmaticPSF):
        sx = psf.sigma_nm * torch.sqrt(1 + ((z + psf.focal_offset_nm) / psf.depth_nm) ** 2)
        sy = psf.sigma_nm * torch.sqrt(1 + ((z - psf.focal_offset_nm) / psf.depth_nm) ** 2)
        return sx, sy
    s = torch.as_tensor(psf.sigma_nm, dtype=z.dtype) + 0 * z
    return s, s


def _expected(theta: torch.Tensor, psf: GaussianPSF, roi: int, pixel_size: float) -> torch.Tensor:
    x, y, z, n, b = theta
    edges = torch.arange(roi + 1, dtype=theta.dtype) * pixel_size
    sx, sy = _torch_sigmas(psf, z)
    cdf = lambda e, c, s: 0.5 * (1 + torch.erf((e - c) / (s * np.sqrt(2))))  # noqa: E731
    px = torch.diff(cdf(edges, x, sx))
    py = torch.diff(cdf(edges, y, sy))
    return n * torch.outer(py, px) + b


def crlb(
    psf: GaussianPSF,
    z_nm: np.ndarray,
    photons: float = 2000.0,
    background: float = 20.0,
    pixel_size: float = 100.0,
    roi: int = 15,
    emccd: bool = True,
) -> np.ndarray:
    """Bounds (nm for x, y, z; photons for N and b) for an emitter at the ROI centre, per z.

    Returns an array ``(len(z_nm), 5)`` with columns :data:`PARAMETERS`.

    Examples
    --------
    >>> b = crlb(GaussianPSF(130.0), np.array([0.0]), photons=5000, background=1, emccd=False)
    >>> bool(1.5 < b[0, 0] < 2.5)  # close to Thompson's √((s² + a²/12)/N) ≈ 1.9 nm
    True
    """
    out = []
    centre = roi * pixel_size / 2
    for z in np.atleast_1d(z_nm):
        theta = torch.tensor([centre, centre, float(z), photons, background], dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(lambda t: _expected(t, psf, roi, pixel_size).flatten(), theta)
        mu = _expected(theta, psf, roi, pixel_size).flatten()
        fisher = (jac / mu[:, None]).T @ jac
        if not isinstance(psf, AstigmaticPSF):  # z is not identifiable for a symmetric in-focus PSF
            fisher[2, 2] += 1.0
        cov = torch.linalg.pinv(fisher)
        bound = torch.sqrt(torch.clamp(torch.diagonal(cov), min=0)) * (np.sqrt(2) if emccd else 1.0)
        if not isinstance(psf, AstigmaticPSF):
            bound[2] = float("nan")
        out.append(bound.numpy())
    return np.asarray(out)
