"""Transposed convolutions rewritten as sub-pixel convolutions, exactly, before ONNX export.

OpenVINO's CPU plugin runs a ``ConvolutionBackpropData`` whose kernel is larger than its stride
(MONAI's U-Net up-sampling: kernel 3, stride 2, padding 1, output padding 1) in float32 even when
NNCF quantized it: on an AMX Xeon that one layer type took half of the int8 2D denoiser's time.
A transposed convolution with stride ``s`` is ``s^d`` ordinary convolutions, one per output phase,
interleaved (Shi et al. 2016, "Real-time single image and video super-resolution using an
efficient sub-pixel convolutional network"). :class:`SubPixelConvTranspose` computes them as one
stride-1 convolution with ``s^d`` times the output channels followed by a depth-to-space shuffle,
which every backend runs at its int8 or bf16 rate. The result equals the transposed convolution
up to float rounding (the same products, summed in another order); zeros pad the phases that
use fewer taps, so it does ``(K'/k)^d · s^d`` times the multiplies, where ``K' = ceil(k/s)``.
"""

from __future__ import annotations

import itertools
import logging
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

log = logging.getLogger(__name__)

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def _taps(k: int, s: int, p: int) -> tuple[int, list[dict[int, int]]]:
    """Per output phase ``r``, which kernel tap reads which input offset: ``y[s·m + r] = Σ x[m + o]·w[k]``.

    Returns the smallest offset ``low`` and, per phase, ``{offset - low: tap}``.
    """
    phases = [{(r + p - t) // s: t for t in range(k) if (r + p - t) % s == 0} for r in range(s)]
    low = min(o for ph in phases for o in ph)
    return low, [{o - low: t for o, t in ph.items()} for ph in phases]


class SubPixelConvTranspose(nn.Module):
    """A ``ConvTranspose{1,2,3}d`` (groups 1, dilation 1) as one convolution and a depth-to-space shuffle.

    Examples
    --------
    >>> up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
    >>> x = torch.randn(1, 8, 5, 7)
    >>> torch.allclose(SubPixelConvTranspose(up)(x), up(x), atol=1e-5)
    True
    """

    def __init__(self, deconv: nn.modules.conv._ConvTransposeNd) -> None:
        super().__init__()
        if not convertible(deconv):
            raise ValueError(f"{deconv} has groups or dilation; only groups=1, dilation=1 convert")
        dims = len(deconv.stride)
        self.stride = tuple(deconv.stride)
        layout = [_taps(k, s, p) for k, s, p in zip(deconv.kernel_size, deconv.stride, deconv.padding, strict=True)]
        sizes = tuple(1 + max(o for ph in phases for o in ph) for _, phases in layout)
        # Output length per axis is n·s + extra; the convolution makes n + rows outputs per phase.
        extra = [
            k + op - 2 * p - s
            for k, s, p, op in zip(deconv.kernel_size, self.stride, deconv.padding, deconv.output_padding, strict=True)
        ]
        rows = [math.ceil((e + s) / s) - 1 for e, s in zip(extra, self.stride, strict=True)]
        # (low, high) input padding per axis (negative: crop) and how much of the shuffled output to drop at the end.
        pads = [(-low, c + size - 1 + low) for (low, _), c, size in zip(layout, rows, sizes, strict=True)]
        crop = [c * s - e for c, s, e in zip(rows, self.stride, extra, strict=True)]
        # Constant slices and pads, computed once: the exported graph has no shape arithmetic.
        self.inner = (slice(None),) * 2 + tuple(slice(max(0, -lo), hi if hi < 0 else None) for lo, hi in pads)
        self.pad = [v for lo, hi in reversed(pads) for v in (max(0, lo), max(0, hi))]
        self.outer = (slice(None),) * 2 + tuple(slice(0, -c) if c else slice(None) for c in crop)
        cin, cout, phases = deconv.in_channels, deconv.out_channels, math.prod(self.stride)
        w = deconv.weight.detach()  # [cin, cout, *k]
        weight = w.new_zeros(cout, phases, cin, *sizes)
        for index, phase in enumerate(itertools.product(*(range(s) for s in self.stride))):
            per_axis = [layout[a][1][r] for a, r in enumerate(phase)]
            for offsets in itertools.product(*(sorted(m) for m in per_axis)):
                taps = tuple(m[o] for m, o in zip(per_axis, offsets, strict=True))
                weight[(slice(None), index, slice(None), *offsets)] = w[(slice(None), slice(None), *taps)].T
        self.conv = _CONV[dims](cin, cout * phases, sizes, bias=deconv.bias is not None)
        self.conv.weight.data = weight.reshape(cout * phases, cin, *sizes)
        if deconv.bias is not None:
            self.conv.bias.data = deconv.bias.detach().repeat_interleave(phases)
        square = dims == 2 and self.stride[0] == self.stride[1]
        self.register_buffer("shuffle", None if square else _one_hot(self.stride, cout, weight), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[self.inner]  # negative pads crop
        if any(self.pad):
            x = F.pad(x, self.pad)
        return _depth_to_space(self.conv(x), self.stride, self.shuffle)[self.outer]


_TRANSPOSE_FN = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _depth_to_space(z: torch.Tensor, stride: tuple[int, ...], one_hot: torch.Tensor | None) -> torch.Tensor:
    """``[B, C·Πs, *n] → [B, C, *(n·s)]``, channel ``c·Πs + phase`` landing on phase ``phase``.

    Square 2D strides use ``pixel_shuffle`` (ONNX DepthToSpace, native everywhere). Other shapes use
    a transposed convolution with kernel = stride and one-hot weights, one group per channel: the
    same values, exactly (one product by 1.0 per output). A rank-8 Reshape/Transpose would do the
    same, but OpenVINO's int8 pipeline mis-scales per-channel data through it when the spatial axes
    are dynamic (correlation 0.90 with fp32 instead of 0.9998 on ``tests/test_subpixel.py``'s 3D net).
    """
    if one_hot is None:
        return F.pixel_shuffle(z, stride[0])
    return _TRANSPOSE_FN[len(stride)](z, one_hot, stride=stride, groups=one_hot.shape[0] // math.prod(stride))


def _one_hot(stride: tuple[int, ...], channels: int, like: torch.Tensor) -> torch.Tensor:
    phases = math.prod(stride)
    w = torch.eye(phases, dtype=like.dtype, device=like.device).reshape(phases, 1, *stride)
    return w.repeat(channels, *([1] * (len(stride) + 1)))


def convertible(module: nn.Module) -> bool:
    """A transposed convolution this rewrite reproduces exactly."""
    return (
        isinstance(module, nn.modules.conv._ConvTransposeNd)
        and module.groups == 1
        and all(d == 1 for d in module.dilation)
        and module.padding_mode == "zeros"
    )


def worth_converting(module: nn.Module) -> bool:
    """Kernel unlike the stride, or padded: what OpenVINO runs in float32 (``k == s`` it runs in int8)."""
    return convertible(module) and (
        any(k != s for k, s in zip(module.kernel_size, module.stride, strict=True)) or any(module.padding)
    )


def to_subpixel(model: nn.Module) -> int:
    """Replace, in place, every transposed convolution worth converting; returns how many were replaced.

    A batch norm that reads only such a convolution is folded into it first: after the shuffle it
    would sit between the convolution and the next layer, and a quantizer NNCF places on the
    convolution's raw output (before the per-channel scale) clips and loses precision — the 3D
    denoiser's Pearson fell from 0.89 to 0.39 that way.
    """
    fold_batchnorms(model)
    return _replace(model)


def _replace(model: nn.Module) -> int:
    replaced = 0
    for name, child in list(model.named_children()):
        if worth_converting(child):
            setattr(model, name, SubPixelConvTranspose(child))
            replaced += 1
        else:
            replaced += _replace(child)
    return replaced


def fold_batchnorms(model: nn.Module) -> int:
    """Fold each eval-mode batch norm whose only input is a transposed convolution read by nothing else.

    The graph comes from ``torch.fx``; a model it cannot trace is left unfolded (logged), which is
    exact too, only less friendly to int8.
    """
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # noqa: BLE001 - fx raises many types on untraceable code
        log.info("not folding batch norms into transposed convolutions: torch.fx cannot trace %s (%s)",
                 type(model).__name__, str(exc).splitlines()[0][:200])  # fmt: skip
        return 0
    modules = dict(model.named_modules())
    folded = 0
    for node in graph.nodes:
        deconv = modules.get(node.target) if node.op == "call_module" else None
        if not worth_converting(deconv) or len(node.users) != 1:
            continue
        (user,) = node.users
        bn = modules.get(user.target) if user.op == "call_module" else None
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm) or bn.training or bn.running_mean is None:
            continue
        fused = fuse_conv_bn_eval(deconv, bn, transpose=True)
        deconv.weight.data, deconv.bias = fused.weight.data, fused.bias
        parent, _, leaf = user.target.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, leaf, nn.Identity())
        folded += 1
    return folded
