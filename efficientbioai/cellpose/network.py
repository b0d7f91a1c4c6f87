"""CPnet as cellpose 3 builds it, and a wrapper that exports it with dynamic spatial axes.

Cellpose's ``make_style`` average-pools with ``kernel_size=x.shape[2:]``: a tracer records the
tile size as a constant, so an exported graph only accepts that size (the EfficientBioAI paper
forked cellpose and hard-coded 224 for this). :class:`ExportableCPnet` computes the same style
vector as a mean over the spatial axes (``ReduceMean`` in ONNX, any size) and returns only the
flows and cell probability map, reusing every CPnet module and weight unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from efficientbioai.cellpose._import import cellpose_module

#: Cellpose 3's standard feature widths after the input channels (``CellposeModel``).
STANDARD_NBASE = (32, 64, 128, 256)


def build_cpnet(
    nchan: int = 2, nbase: tuple[int, ...] = STANDARD_NBASE, nout: int = 3, diam_mean: float = 30.0
) -> nn.Module:
    """``CPnet([nchan, *nbase], nout, sz=3, max_pool=True, diam_mean)`` exactly as
    ``cellpose.models.CellposeModel`` makes it (MKL-DNN off: it cannot be traced)."""
    resnet = cellpose_module("resnet_torch")
    return resnet.CPnet([nchan, *nbase], nout, sz=3, mkldnn=False, max_pool=True, diam_mean=diam_mean)


class ExportableCPnet(nn.Module):
    """CPnet's forward with a size-independent style vector; returns ``(B, nout, H, W)``.

    ``H`` and ``W`` must be multiples of ``2**(len(nbase) - 1)`` (cellpose pads tiles to 16).
    The wrapped network stays at ``self.net``, so its state_dict keys are cellpose's own under ``net.``.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.net.downsample(x)
        style = features[-1].mean(dim=tuple(range(2, features[-1].ndim)))
        style = style / torch.sum(style**2, dim=1, keepdim=True) ** 0.5
        if not self.net.style_on:
            style = style * 0
        return self.net.output(self.net.upsample(style, features, False))
