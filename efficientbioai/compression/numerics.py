"""How far float32 rounding alone moves a model's output: the yardstick for "equal".

Two correct float32 implementations of one network (torch and ONNX Runtime, two batch sizes,
an AVX2 and an AMX kernel) sum in different orders and so differ by rounding. How much depends
on the model (depth, fan-in, cancellation) and its inputs, not on a constant. This module
measures it: the same model run in float64 on the same inputs is, to float32 precision, exact,
so ``max |f32 − f64| / max |f64|`` is the rounding noise float32 puts on this output. A second
float32 implementation is expected within a small multiple of that noise; an export that
computes something else is many orders of magnitude further.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

#: float32 machine epsilon: no float32 result is resolved more finely relative to its scale.
EPS32 = float(np.finfo(np.float32).eps)
#: Smallest tolerance ever used: a few ulps of the output's peak (a model whose float64 run
#: happens to round like float32 on these inputs must not get a zero tolerance).
TOLERANCE_FLOOR = 8 * EPS32


def as_tensors(out) -> list[torch.Tensor]:
    """A model's output (tensor, tuple/list or dict of tensors) as a flat list."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for v in (out.values() if isinstance(out, dict) else out) for t in as_tensors(v)]


def relative_to_peak(got: np.ndarray, want: np.ndarray) -> float:
    """``max |got − want| / max |want|`` (0 for an all-zero reference that is matched exactly)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    diff = float(np.abs(got - want).max(initial=0.0))
    peak = float(np.abs(want).max(initial=0.0))
    if not np.isfinite(diff):
        return float("inf")
    return diff / peak if peak > 0 else (0.0 if diff == 0 else float("inf"))


def float32_rounding(model: nn.Module, inputs: Iterable[torch.Tensor]) -> float:
    """The rounding noise of ``model``'s float32 output on ``inputs``, relative to its peak.

    ``max |model(x) − model64(x)| / max |model64(x)|`` over every output and input, where
    ``model64`` is a float64 copy (``model`` is left untouched). Raises ``TypeError`` or
    ``RuntimeError`` from torch when the model cannot run in float64 (e.g. a float32 constant
    created inside ``forward``).

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))
    >>> noise = float32_rounding(net, [torch.randn(2, 1, 16, 16)])
    >>> 0 < noise < 1e-5
    True
    """
    model = model.eval()
    model64 = copy.deepcopy(model).double()
    worst = 0.0
    with torch.no_grad():
        for x in inputs:
            outs32 = as_tensors(model(x.float()))
            outs64 = as_tensors(model64(x.double()))
            for a, b in zip(outs32, outs64):
                worst = max(worst, relative_to_peak(a.numpy(), b.numpy()))
    return worst


def derived_tolerance(noise: float, safety: float) -> float:
    """The largest relative-to-peak difference accepted between two float32 runs of one model:
    ``safety × noise``, never below :data:`TOLERANCE_FLOOR`.

    Each float32 run sits about ``noise`` from the exact result, so two of them sit up to about
    ``2 × noise`` apart; the safety factor covers kernels that round less luckily than torch did.
    """
    return max(TOLERANCE_FLOOR, safety * noise)
