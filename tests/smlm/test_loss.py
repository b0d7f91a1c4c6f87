"""DilatedLoc loss: the matrix-product mixture equals the textbook Gaussian mixture."""

import math

import torch

from efficientbioai.smlm.loss import detection_map, dilatedloc_loss, mixture_loss


def _reference_mixture(out, truth, mask, z_scale, photon_scale):
    """−Σ_m log Σ_k w_k Π_d N(t_md | μ_kd, σ_kd), written out directly (4-D intermediate)."""
    b, _, h, w = out.shape
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    cx, cy = cols.flatten().double() + 0.5, rows.flatten().double() + 0.5
    o = out.double()
    p = o[:, 0].flatten(1)
    scale = torch.tensor([1.0, 1.0, z_scale, photon_scale], dtype=torch.float64)
    mu = torch.stack([o[:, 1].flatten(1) + cx, o[:, 2].flatten(1) + cy, o[:, 3].flatten(1), o[:, 4].flatten(1)], -1)
    mu = mu / scale
    sigma = o[:, 5:9].flatten(2).transpose(1, 2)
    log_w = torch.log(p) - torch.log(p.sum(1, keepdim=True))
    t = (truth.double() / scale)[:, :, None, :]
    log_n = -0.5 * ((t - mu[:, None]) / sigma[:, None]) ** 2 - torch.log(sigma[:, None]) - 0.5 * math.log(2 * math.pi)
    log_lik = torch.logsumexp(log_w[:, None] + log_n.sum(-1), dim=-1)
    return -(log_lik * mask).sum(1)


def _outputs(b=2, h=12, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(b, 1, h, w, generator=g) * 0.9 + 0.05
    offsets = torch.rand(b, 2, h, w, generator=g) * 2 - 1
    z = (torch.rand(b, 1, h, w, generator=g) * 2 - 1) * 700
    photons = torch.rand(b, 1, h, w, generator=g) * 20000
    sigma = torch.rand(b, 4, h, w, generator=g) * 0.3 + 0.03
    return torch.cat([p, offsets, z, photons, sigma], 1)


def test_mixture_matches_reference():
    out = _outputs()
    truth = torch.tensor(
        [
            [[3.2, 4.7, -120.0, 5000.0], [10.9, 1.1, 300.0, 12000.0], [0, 0, 0, 0]],
            [[15.5, 11.5, 650.0, 900.0], [0, 0, 0, 0], [0, 0, 0, 0]],
        ]
    )
    mask = torch.tensor([[True, True, False], [True, False, False]])
    got = mixture_loss(out, truth, mask, 700.0, 20000.0)
    want = _reference_mixture(out, truth, mask, 700.0, 20000.0)
    assert torch.allclose(got.double(), want, rtol=1e-5, atol=1e-3), (got, want)


def test_loss_prefers_the_right_answer():
    """A prediction centred on the emitters scores lower than one shifted by half a pixel."""
    h = w = 8
    truth = torch.tensor([[[2.3, 5.6, 100.0, 4000.0]]])
    mask = torch.tensor([[True]])
    good = torch.zeros(1, 9, h, w)
    good[:, 0] = 1e-4
    good[0, 0, 5, 2] = 0.999
    good[0, 1, 5, 2], good[0, 2, 5, 2] = -0.2, 0.1
    good[0, 3], good[0, 4] = 100.0, 4000.0
    good[:, 5:] = 0.05
    bad = good.clone()
    bad[0, 1, 5, 2] += 0.5
    loss_good, _ = dilatedloc_loss(good, truth, mask, 700.0, 20000.0)
    loss_bad, _ = dilatedloc_loss(bad, truth, mask, 700.0, 20000.0)
    assert loss_good < loss_bad
    assert detection_map(truth, mask, (h, w))[0, 5, 2] == 1


def test_loss_has_gradients_everywhere_needed():
    out = _outputs(b=1, h=8, w=8).requires_grad_(True)
    truth = torch.tensor([[[3.5, 3.5, 0.0, 1000.0]]])
    loss, parts = dilatedloc_loss(out, truth, torch.tensor([[True]]), 700.0, 20000.0)
    loss.backward()
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0
    assert set(parts) == {"count", "gmm", "bce"}
