"""Comparisons that hold on every CPU: float outputs within the float32 rounding the model itself
has (measured against a float64 run, :mod:`efficientbioai.compression.numerics`), and detection
tables by matching, never by bit-equality across batch sizes, chunk borders or ISAs."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from efficientbioai.compression.numerics import derived_tolerance, float32_rounding, relative_to_peak

#: Safety factor over the model's own float32 rounding (as the export check's default).
SAFETY = 10.0


def tolerance_of(model: torch.nn.Module, *inputs: torch.Tensor, safety: float = SAFETY) -> float:
    """Relative-to-peak tolerance for two float32 runs of ``model`` on ``inputs``."""
    return derived_tolerance(float32_rounding(model, inputs), safety)


def assert_close_to_peak(got, want, tolerance: float) -> None:
    """``max |got − want| ≤ tolerance × max |want|`` (float32 rounding scales with the output's
    peak, not with each element: a near-zero element carries the rounding of its large terms)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = relative_to_peak(got, want)
    assert err <= tolerance, f"differs by {err:.2e} of the peak, above the float32 tolerance {tolerance:.2e}"


def assert_same_detections(
    got: np.ndarray, want: np.ndarray, tolerance: float, radius_nm: float = 50.0, flips: float = 0.01
) -> None:
    """Two localization tables (frame, x, y, ... columns) hold the same detections.

    Rows are paired frame by frame by position (optimal assignment, pairs at most ``radius_nm``
    apart); a pair is equal when every column agrees within ``tolerance`` × that column's peak.
    Float rounding can still move a value across one of the post-processing's discrete
    boundaries (detection threshold, clip, split, a tie between neighbouring maxima) and so add,
    drop or change one detection: each needs a value within ~1e-5 of a boundary, so such rows are
    rare, and at most ``max(1, flips × len(want))`` unpaired or unequal rows are accepted.
    """
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape[1:] == want.shape[1:], (got.shape, want.shape)
    atol = tolerance * np.abs(want).max(axis=0, initial=0.0)
    odd = 0
    for frame in np.union1d(got[:, 0], want[:, 0]):
        a, b = got[got[:, 0] == frame], want[want[:, 0] == frame]
        dist = np.hypot(a[:, None, 1] - b[None, :, 1], a[:, None, 2] - b[None, :, 2])
        rows, cols = linear_sum_assignment(dist) if len(a) and len(b) else (np.array([], int), np.array([], int))
        near = dist[rows, cols] <= radius_nm
        equal = np.all(np.abs(a[rows[near]] - b[cols[near]]) <= atol, axis=1)
        odd += len(a) + len(b) - 2 * int(near.sum()) + int((~equal).sum())
    allowed = max(1, int(flips * len(want)))
    assert odd <= allowed, f"{odd} of {len(want)} detections unpaired or unequal (allowed {allowed})"
