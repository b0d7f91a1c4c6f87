"""Localization scoring as the SMLM challenge does it (and DECODE / FD-DeepLoc implement it).

Per frame, predictions and ground truth are matched 1:1 within a lateral (250 nm) and an
axial (500 nm) tolerance: greedily by distance (the challenge's rule) or optimally
(Hungarian, ``method="hungarian"``). Then

- Jaccard = TP / (TP + FP + FN), recall, precision;
- RMSE lateral = √(Σ(dx² + dy²) / TP) (not divided by 2·TP as DilatedLoc does), axial = √(Σdz²/TP);
- efficiency E = 100 − √((100 − 100·JI)² + α²·RMSE²), α = 1 nm⁻¹ lateral, 0.5 nm⁻¹ axial,
  E_3D = their mean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass
class LocalizationScore:
    tp: int
    fp: int
    fn: int
    jaccard: float
    recall: float
    precision: float
    rmse_lateral: float
    rmse_axial: float
    rmse_volume: float
    efficiency_lateral: float
    efficiency_axial: float
    efficiency_3d: float
    dx_mean: float
    dy_mean: float
    dz_mean: float

    def as_dict(self) -> dict:
        return asdict(self)


def _pairs_in_frame(p: np.ndarray, g: np.ndarray, lat: float, ax: float, method: str) -> list[tuple[int, int]]:
    """Index pairs (prediction, truth) matched in one frame. Rows are x, y, z in nm."""
    if len(p) == 0 or len(g) == 0:
        return []
    d_lat = np.hypot(p[:, None, 0] - g[None, :, 0], p[:, None, 1] - g[None, :, 1])
    d_ax = np.abs(p[:, None, 2] - g[None, :, 2])
    ok = (d_lat <= lat) & (d_ax <= ax)
    dist = np.sqrt(d_lat**2 + d_ax**2)
    if method == "hungarian":
        cost = np.where(ok, dist, 1e12)
        rows, cols = linear_sum_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols) if ok[r, c]]
    pairs, used_p, used_g = [], set(), set()
    rows, cols = np.unravel_index(np.argsort(np.where(ok, dist, np.inf), axis=None), dist.shape)
    for i, j in zip(rows.tolist(), cols.tolist()):
        if not ok[i, j]:
            break
        if i not in used_p and j not in used_g:
            used_p.add(i)
            used_g.add(j)
            pairs.append((i, j))
    return pairs


def match_localizations(
    pred: np.ndarray,
    truth: np.ndarray,
    tolerance_lateral: float = 250.0,
    tolerance_axial: float = 500.0,
    method: str = "greedy",
) -> tuple[np.ndarray, np.ndarray]:
    """Match ``pred`` to ``truth`` frame by frame.

    Both are arrays with columns ``frame, x, y, z`` (nm; more columns are ignored). Returns
    the row indices of matched predictions and of their matched ground truth.
    """
    if method not in ("greedy", "hungarian"):
        raise ValueError(f"method must be 'greedy' or 'hungarian', got {method!r}")
    pred, truth = _table(pred, "pred"), _table(truth, "truth")
    pi, gi = [], []
    for frame in np.union1d(pred[:, 0], truth[:, 0]):
        p_idx = np.flatnonzero(pred[:, 0] == frame)
        g_idx = np.flatnonzero(truth[:, 0] == frame)
        for a, b in _pairs_in_frame(pred[p_idx, 1:4], truth[g_idx, 1:4], tolerance_lateral, tolerance_axial, method):
            pi.append(p_idx[a])
            gi.append(g_idx[b])
    return np.asarray(pi, int), np.asarray(gi, int)


def _table(a: np.ndarray, name: str) -> np.ndarray:
    """A localization table with at least the columns frame, x, y, z (an empty one allowed)."""
    a = np.asarray(a, dtype=float)
    if a.size == 0:
        return np.zeros((0, 4))
    if a.ndim != 2 or a.shape[1] < 4:
        raise ValueError(f"{name} must be a table with columns frame, x, y, z (nm); got shape {a.shape}")
    return a


def efficiency(jaccard: float, rmse: float, alpha: float) -> float:
    """The challenge's efficiency (%) from Jaccard (0–1) and RMSE (nm)."""
    return float(100 - np.sqrt((100 - 100 * jaccard) ** 2 + alpha**2 * rmse**2))


def score_localizations(
    pred: np.ndarray,
    truth: np.ndarray,
    tolerance_lateral: float = 250.0,
    tolerance_axial: float = 500.0,
    method: str = "greedy",
) -> LocalizationScore:
    """Jaccard, recall, precision, RMSE and efficiency of ``pred`` against ``truth``.

    Examples
    --------
    >>> truth = np.array([[1, 100.0, 100.0, 0.0], [1, 900.0, 900.0, 0.0]])
    >>> pred = np.array([[1, 110.0, 100.0, 0.0]])
    >>> s = score_localizations(pred, truth)
    >>> s.tp, s.fn, round(s.jaccard, 2), round(s.rmse_lateral, 1)
    (1, 1, 0.5, 10.0)
    """
    pred, truth = _table(pred, "pred"), _table(truth, "truth")
    pi, gi = match_localizations(pred, truth, tolerance_lateral, tolerance_axial, method)
    tp = len(pi)
    fp, fn = len(pred) - tp, len(truth) - tp
    d = pred[pi, 1:4] - truth[gi, 1:4] if tp else np.zeros((0, 3))
    rmse_lat = float(np.sqrt(np.sum(d[:, 0] ** 2 + d[:, 1] ** 2) / tp)) if tp else float("nan")
    rmse_ax = float(np.sqrt(np.sum(d[:, 2] ** 2) / tp)) if tp else float("nan")
    rmse_vol = float(np.sqrt(np.sum(d**2) / tp)) if tp else float("nan")
    total = tp + fp + fn
    ji = tp / total if total else 1.0
    e_lat = efficiency(ji, rmse_lat, 1.0) if tp else 0.0
    e_ax = efficiency(ji, rmse_ax, 0.5) if tp else 0.0
    mean = d.mean(axis=0) if tp else np.full(3, np.nan)
    return LocalizationScore(
        tp=tp,
        fp=fp,
        fn=fn,
        jaccard=ji,
        recall=tp / (tp + fn) if tp + fn else 1.0,
        precision=tp / (tp + fp) if tp + fp else 1.0,
        rmse_lateral=rmse_lat,
        rmse_axial=rmse_ax,
        rmse_volume=rmse_vol,
        efficiency_lateral=e_lat,
        efficiency_axial=e_ax,
        efficiency_3d=(e_lat + e_ax) / 2,
        dx_mean=float(mean[0]),
        dy_mean=float(mean[1]),
        dz_mean=float(mean[2]),
    )


def rmse_by_z(
    pred: np.ndarray, truth: np.ndarray, edges_nm: np.ndarray, method: str = "greedy"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lateral and axial RMSE of matched localizations in bins of true z.

    Returns ``(bin centres, rmse_lateral per axis (√(Σ(dx²+dy²)/2TP), comparable to a per-axis
    CRLB), rmse_axial)``; bins without matches are NaN.
    """
    pred, truth = _table(pred, "pred"), _table(truth, "truth")
    pi, gi = match_localizations(pred, truth, method=method)
    d = pred[pi, 1:4] - truth[gi, 1:4]
    z = truth[gi, 3]
    centres = (edges_nm[:-1] + edges_nm[1:]) / 2
    lat, ax = np.full(len(centres), np.nan), np.full(len(centres), np.nan)
    for i in range(len(centres)):
        sel = (z >= edges_nm[i]) & (z < edges_nm[i + 1])
        if sel.any():
            lat[i] = np.sqrt(np.mean((d[sel, 0] ** 2 + d[sel, 1] ** 2) / 2))
            ax[i] = np.sqrt(np.mean(d[sel, 2] ** 2))
    return centres, lat, ax
