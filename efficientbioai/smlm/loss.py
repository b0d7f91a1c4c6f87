"""DilatedLoc's training loss: DECODE's count loss + Gaussian-mixture localization likelihood,
plus the pixelwise weighted binary cross-entropy DilatedLoc adds.

Network output channels are those of :data:`efficientbioai.models.dilatedloc.OUTPUT_CHANNELS`.
Ground truth per frame is padded to ``M`` emitters: ``truth (B, M, 4)`` holding x, y in pixel
units (``x_nm / pixel_size``), z in nm and photons, and ``mask (B, M)`` marking real rows.

The mixture uses the squared error in its exponent, as DECODE and FD-DeepLoc do (DilatedLoc's
code has |Δ| there: SMLM_NOTES.md). Axial and photon coordinates are divided by the network's
``z_scale`` and ``photon_scale`` so every dimension has a comparable range.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _pixel_centres(h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    rows, cols = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return cols.flatten().float() + 0.5, rows.flatten().float() + 0.5


def count_loss(p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """−log N(n | Σp, Σp(1−p)) per frame: a Gaussian approximation of the Poisson-binomial count."""
    mean = p.flatten(1).sum(1)
    var = (p * (1 - p)).flatten(1).sum(1).clamp_min(1e-6)
    n = mask.float().sum(1)
    return 0.5 * (n - mean) ** 2 / var + 0.5 * torch.log(2 * math.pi * var)


def mixture_loss(out: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor, z_scale: float, photon_scale: float):
    """−Σ log Σ_k w_k N(truth | μ_k, σ_k) per frame, weights w_k = p_k / Σp."""
    b, _, h, w = out.shape
    p = out[:, 0].flatten(1)
    cx, cy = _pixel_centres(h, w, out.device)
    scale = torch.tensor([1.0, 1.0, z_scale, photon_scale], device=out.device)
    mu = torch.cat([out[:, 1:3].flatten(2) + torch.stack([cx, cy]), out[:, 3:5].flatten(2)], 1).transpose(1, 2) / scale
    sigma = out[:, 5:9].flatten(2).transpose(1, 2)  # (B, K, 4), already in scaled units
    log_w = torch.log(p.clamp_min(1e-8)) - torch.log(p.sum(1, keepdim=True).clamp_min(1e-8))
    # Σ_d ((t_d − μ_d)/σ_d)² expanded into one batched matrix product (B, M, 12) @ (B, 12, K):
    # no (B, M, K, 4) intermediate, so dense frames (hundreds of emitters) stay cheap. float64
    # because the expansion subtracts large terms (pixel coordinates over σ ≈ 0.05 px).
    t = (truth / scale).double()
    mu, sigma = mu.double(), sigma.double()
    inv = sigma.pow(-2)
    coeffs = torch.cat([inv, -2 * mu * inv, mu.pow(2) * inv], -1)  # (B, K, 12)
    powers = torch.cat([t.pow(2), t, torch.ones_like(t)], -1)  # (B, M, 12)
    quad = torch.bmm(powers, coeffs.transpose(1, 2)).clamp_min(0)  # (B, M, K)
    log_n = -0.5 * quad - torch.log(sigma).sum(-1)[:, None, :] - 2 * math.log(2 * math.pi)
    log_lik = torch.logsumexp(log_w.double()[:, None] + log_n, dim=-1).float()  # (B, M)
    return -(log_lik * mask).sum(1)


def detection_map(truth: torch.Tensor, mask: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """1 at the pixel holding each emitter, 0 elsewhere: ``(B, H, W)``."""
    b = truth.shape[0]
    target = torch.zeros(b, *shape, device=truth.device)
    col = truth[..., 0].floor().long().clamp(0, shape[1] - 1)
    row = truth[..., 1].floor().long().clamp(0, shape[0] - 1)
    batch = torch.arange(b, device=truth.device)[:, None].expand_as(col)
    target[batch[mask], row[mask], col[mask]] = 1.0
    return target


def dilatedloc_loss(
    out: torch.Tensor,
    truth: torch.Tensor,
    mask: torch.Tensor,
    z_scale: float,
    photon_scale: float,
    bce_weight: float = 1.0,
    positive_weight: float = 0.65,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean over the batch of count + mixture + weighted BCE; also the parts, for logging."""
    mask = mask.bool()
    p = out[:, 0]
    count = count_loss(p, mask)
    gmm = mixture_loss(out, truth, mask, z_scale, photon_scale)
    target = detection_map(truth, mask, p.shape[-2:])
    weights = torch.where(target > 0, positive_weight, 1 - positive_weight)
    bce = F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), target, weight=weights, reduction="none").flatten(1).sum(1)
    total = (count + gmm + bce_weight * bce).mean()
    return total, {name: float(part.mean().detach()) for name, part in (("count", count), ("gmm", gmm), ("bce", bce))}
