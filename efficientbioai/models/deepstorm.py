"""Deep-STORM networks: one high-density SMLM frame in, a super-resolved spike image out.

Two bodies share one wrapper (:class:`DeepSTORM`) that owns what every variant needs:

- **normalisation inside the graph**: each frame is min-max scaled to [0, 1] on its own, then
  standardised with the training set's mean and std (buffers ``norm_mean`` / ``norm_std``, saved
  in the state_dict), exactly as Deep-STORM normalises at test time. Engines then take raw
  camera frames and an exported model cannot be run with the wrong statistics.
- **the ×``upsample`` grid**: the output has ``upsample`` × the frame's size (12.5 nm pixels for
  100 nm camera pixels at ×8).
- **optional on-device frame summation** (``sum_frames``): negatives clipped and the batch summed
  inside the graph, so an engine returns one image per batch instead of one per frame — the
  deployment trick of the Deep-STORM/TensorRT paper. A deployed per-frame model clips negatives
  in the graph too (``clip``); training uses neither (the loss needs the linear output).

Variants
--------
``original``
    Deep-STORM (Nehme et al., Optica 2018; EliasNehme/Deep-STORM ``CNN_Model.py``): the frame
    upsampled ×8 by nearest neighbour, then conv3×3 (no bias) → BN → ReLU blocks with 32, 64,
    128, 512 filters and 2×2 max-pooling, a decoder of 128, 64, 32 filters with ×2 nearest
    upsampling, and a linear 1×1 output without bias; no skip connections. 1,366,208 trainable
    parameters at ``width=32`` (the Keras count without BN running statistics).
``unet``
    The improved U-Net: features are extracted from the low-resolution frame (two poolings,
    skip connections by concatenation, the paper's "U-network on the raw image"), then three
    learned ×2 upsampling stages (transposed conv → BN → ReLU → conv block) reach the ×8 grid.
    Computing the features at camera resolution instead of on the 64× larger upsampled frame is
    what makes it ~40× cheaper than ``original`` per frame at a similar width.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

VARIANTS = ("original", "unet")


class ConvBNReLU(nn.Sequential):
    """3×3 convolution without bias (BN follows) → BatchNorm → ReLU, Deep-STORM's block."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class OriginalBody(nn.Module):
    """Deep-STORM's encoder–decoder on the upsampled frame (input already ×8)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.f1, self.f2, self.f3 = ConvBNReLU(1, w), ConvBNReLU(w, 2 * w), ConvBNReLU(2 * w, 4 * w)
        self.f4 = ConvBNReLU(4 * w, 16 * w)
        self.f5, self.f6, self.f7 = ConvBNReLU(16 * w, 4 * w), ConvBNReLU(4 * w, 2 * w), ConvBNReLU(2 * w, w)
        self.head = nn.Conv2d(w, 1, 1, bias=False)

    #: the input side must be a multiple of this (three 2×2 poolings)
    multiple = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.f1(x)
        for block in (self.f2, self.f3, self.f4):
            x = block(F.max_pool2d(x, 2))
        for block in (self.f5, self.f6, self.f7):
            x = block(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return self.head(x)


class UpStage(nn.Module):
    """×2 learned upsampling: 2×2 transposed conv (stride 2) → BN → ReLU → conv block."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.conv = ConvBNReLU(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(self.bn(self.up(x))))


class UNetBody(nn.Module):
    """U-Net at camera resolution (skip connections), then learned ×2 stages to the fine grid."""

    def __init__(self, width: int = 32, upsample: int = 8) -> None:
        super().__init__()
        w = width
        self.enc1 = nn.Sequential(ConvBNReLU(1, w), ConvBNReLU(w, w))
        self.enc2 = nn.Sequential(ConvBNReLU(w, 2 * w), ConvBNReLU(2 * w, 2 * w))
        self.bottom = nn.Sequential(ConvBNReLU(2 * w, 4 * w), ConvBNReLU(4 * w, 4 * w))
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2, bias=False)
        self.dec2 = nn.Sequential(ConvBNReLU(4 * w, 2 * w), ConvBNReLU(2 * w, 2 * w))
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2, bias=False)
        self.dec1 = nn.Sequential(ConvBNReLU(2 * w, w), ConvBNReLU(w, w))
        stages, c = [], w
        for _ in range(int(math.log2(upsample)) - 1):
            nxt = max(c // 2, 8)
            stages.append(UpStage(c, nxt))
            c = nxt
        self.upsample = nn.Sequential(*stages)
        # the last ×2 is the linear output itself: no 3×3 conv runs on the full fine grid
        self.head = (
            nn.ConvTranspose2d(c, 1, 2, stride=2, bias=False) if upsample > 1 else nn.Conv2d(c, 1, 1, bias=False)
        )

    #: the input side must be a multiple of this (two 2×2 poolings)
    multiple = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottom(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.head(self.upsample(d1))


class SummedShuffleHead(nn.Module):
    """The U-Net's output layer, clip and frame sum, reordered for deployment — exactly equal.

    The head is a ``k×k`` stride-``k`` transposed convolution: each feature pixel writes its own
    ``k×k`` block, i.e. a 1×1 convolution to ``k²`` channels and a pixel shuffle. The clip
    (element-wise) and the frame sum commute with the shuffle, so the batch is clipped and summed
    at ``k²`` channels and only the summed image is shuffled. OpenVINO ran the one-channel
    transposed convolution as a scatter (22 % of the int8 time) and quantized every frame's
    512×512 output before the sum (12 %). Swapped in on an export copy
    (:meth:`efficientbioai.parsers.deepstorm.DeepSTORMParser.export_graph`); state_dicts keep the
    transposed convolution.
    """

    def __init__(self, head: nn.ConvTranspose2d) -> None:
        super().__init__()
        k = head.kernel_size[0]
        if head.kernel_size != (k, k) or head.stride != (k, k) or head.padding != (0, 0) or head.bias is not None:
            raise ValueError("SummedShuffleHead needs a bias-free k×k transposed convolution of stride k")
        self.factor = k
        weight = head.weight.detach().permute(1, 2, 3, 0).reshape(-1, head.in_channels, 1, 1)
        self.register_buffer("weight", weight.clone())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        blocks = F.relu(F.conv2d(features, self.weight)).sum(dim=0, keepdim=True)
        return F.pixel_shuffle(blocks, self.factor)


class DeepSTORM(nn.Module):
    """Raw camera frames ``(B, 1, h, w)`` → spike images ``(B, 1, u·h, u·w)`` (or their sum).

    Parameters
    ----------
    variant : {"original", "unet"}
        Network body (see the module docstring).
    width : int
        Filters of the first level (32 is Deep-STORM's; smaller trains faster on a CPU).
    upsample : int
        Super-resolution factor, a power of two (8: 100 nm camera pixels → 12.5 nm).
    sum_frames : bool
        Clip negatives and sum the batch inside the graph (output ``(1, 1, u·h, u·w)``).
    clip : bool
        Clip negatives of each frame's prediction (Deep-STORM's test-time step) when not summing.

    Examples
    --------
    >>> net = DeepSTORM("unet", width=8).eval()
    >>> net(torch.rand(2, 1, 16, 16)).shape
    torch.Size([2, 1, 128, 128])
    >>> sum(p.numel() for p in DeepSTORM("original").parameters())
    1366208
    """

    def __init__(
        self, variant: str = "unet", width: int = 32, upsample: int = 8, sum_frames: bool = False, clip: bool = False
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if upsample < 1 or upsample & (upsample - 1):
            raise ValueError(f"upsample must be a power of two, got {upsample}")
        if width < 1:
            raise ValueError(f"width must be positive, got {width}")
        self.variant, self.width, self.upsample = variant, width, upsample
        self.sum_frames, self.clip = sum_frames, clip
        self.body = OriginalBody(width) if variant == "original" else UNetBody(width, upsample)
        self.register_buffer("norm_mean", torch.tensor(0.0))
        self.register_buffer("norm_std", torch.tensor(1.0))

    @property
    def multiple(self) -> int:
        """Frame sides must be a multiple of this (the parser pads, then crops the output)."""
        body = self.body.multiple
        return max(1, body // self.upsample) if self.variant == "original" else body

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame min-max to [0, 1], then the training set's mean/std (Deep-STORM's test-time recipe)."""
        lo = x.amin(dim=(2, 3), keepdim=True)
        hi = x.amax(dim=(2, 3), keepdim=True)
        x = (x - lo) / (hi - lo).clamp_min(1e-6)
        return (x - self.norm_mean) / self.norm_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalise(x)
        if self.variant == "original":
            x = F.interpolate(x, scale_factor=float(self.upsample), mode="nearest")
        y = self.body(x)
        if isinstance(self.body.head, SummedShuffleHead):  # already clipped and summed
            return y
        if self.sum_frames:
            return F.relu(y).sum(dim=0, keepdim=True)
        return F.relu(y) if self.clip else y
