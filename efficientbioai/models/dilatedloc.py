"""DilatedLoc: dense dilated convolutions + a two-stage U-Net + DECODE-style per-pixel heads.

Follows the self-consistent reference commit (ltd0924/DilatedLoc @ db63488) as described in
``shared/SMLM_NOTES.md``; written here, not copied. One output tensor ``(N, 9, H, W)`` so the
network exports, quantizes and tiles like any image-to-image model; channels are
:data:`OUTPUT_CHANNELS`:

- ``p``: detection probability (sigmoid of a logit clamped to ±16);
- ``dx, dy``: sub-pixel offsets in pixels (tanh, in [−1, 1]) from the pixel centre;
- ``z``: axial position in nm (tanh × ``z_scale``);
- ``photons``: sigmoid × ``photon_scale``;
- ``sx, sy, sz, sphotons``: predicted uncertainties (sigmoid + 0.001, in the same units scaled).
"""

from __future__ import annotations

import torch
from torch import nn

OUTPUT_CHANNELS = ("p", "dx", "dy", "z", "photons", "sx", "sy", "sz", "sphotons")


class ConvReLUBN(nn.Module):
    """3×3 convolution (bias, Kaiming init) → ReLU → BatchNorm (BN after the activation)."""

    def __init__(self, cin: int, cout: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation)
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity="relu")
        self.act = nn.ReLU()
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.act(self.conv(x)))


class Head(nn.Module):
    """3×3 conv F→F + ELU, then 1×1 conv to ``cout`` channels."""

    def __init__(self, width: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.act = nn.ELU()
        self.out = nn.Conv2d(width, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.conv(x)))


class OutputStage(nn.Module):
    """Head activations and scaling, concatenated into the 9 output maps.

    A module of its own so its nodes export under ``/output/`` and can be kept in float as one
    group: the channels have very different ranges (p in [0, 1], photons up to ``photon_scale``),
    so a per-tensor int8 range over the concatenation would erase p.
    """

    def __init__(self, z_scale: float, photon_scale: float) -> None:
        super().__init__()
        self.z_scale, self.photon_scale = z_scale, photon_scale

    def forward(self, logit_p: torch.Tensor, xyzi: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(torch.clamp(logit_p, -16.0, 16.0))
        offsets = torch.tanh(xyzi[:, :2])
        z = torch.tanh(xyzi[:, 2:3]) * self.z_scale
        photons = torch.sigmoid(xyzi[:, 3:4]) * self.photon_scale
        return torch.cat([p, offsets, z, photons, torch.sigmoid(sigma) + 0.001], 1)


class DilatedLoc(nn.Module):
    """DilatedLoc localization network.

    Parameters
    ----------
    width : int
        Feature channels ``F`` (48 gives < 500k parameters).
    frames : int
        Input frames (1, or 3 for temporal context; the middle frame is the target).
    z_scale : float
        Half axial range in nm (z = tanh · z_scale).
    photon_scale : float
        Largest photon count the photon head can express.

    Examples
    --------
    >>> net = DilatedLoc(width=16)
    >>> net(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 9, 32, 32])
    """

    def __init__(self, width: int = 48, frames: int = 1, z_scale: float = 700.0, photon_scale: float = 20000.0):
        super().__init__()
        f = width
        self.frames, self.z_scale, self.photon_scale = frames, z_scale, photon_scale
        self.norm = nn.BatchNorm2d(frames)
        self.l1 = ConvReLUBN(frames, f)
        self.l2 = ConvReLUBN(f + frames, f)
        self.l3 = ConvReLUBN(f + frames, f)
        self.dilated = nn.ModuleList(ConvReLUBN(f, f, d) for d in (2, 4, 8, 16))
        self.u1 = ConvReLUBN(f + frames, f)
        self.pool = nn.AvgPool2d(2)
        self.down = nn.Sequential(ConvReLUBN(f, f), ConvReLUBN(f, 2 * f), ConvReLUBN(2 * f, 2 * f))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.up_conv = ConvReLUBN(2 * f, f)
        self.merge = nn.Sequential(ConvReLUBN(2 * f, f), ConvReLUBN(f, f))
        self.head_p = Head(f, 1)
        self.head_xyzi = Head(f, 4)
        self.head_sigma = Head(f, 4)
        self.output = OutputStage(z_scale, photon_scale)
        nn.init.constant_(self.head_p.out.bias, -6.0)  # start with few detections

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.norm(x)
        h = self.l1(raw)
        h = self.l2(torch.cat([h, raw], 1)) + h
        h = self.l3(torch.cat([h, raw], 1)) + h
        d4 = self.dilated[0](h) + h
        d5 = self.dilated[1](d4) + d4
        d6 = self.dilated[2](d5) + d5
        d7 = self.dilated[3](d6) + d4 + d6  # residual (L6) plus the dense connection from L4
        u1 = self.u1(torch.cat([d7, raw], 1))
        low = self.down(self.pool(u1))
        up = self.up_conv(self.up(low))
        return self.merge(torch.cat([up, u1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.output(self.head_p(h), self.head_xyzi(h), self.head_sigma(h))
