"""Image metrics: Pearson, PSNR, SSIM (image-to-image) and Dice (segmentation).

All take numpy arrays of equal shape and return a float; higher is better for all of them.

:func:`psnr` and :func:`ssim` score the prediction in the units it comes in, against the
reference's own range ("raw"). :func:`normalized_psnr` and :func:`normalized_ssim` first apply
the normalisation of CARE's evaluation (CSBDeep, Weigert et al. 2018, :func:`care_normalize`),
so that a network whose output units differ from the target's by an affine change is not
penalised for the units.
"""

from __future__ import annotations

import numpy as np


def _check(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: prediction {a.shape} vs reference {b.shape}")
    return a, b


def pearson(pred: np.ndarray, ref: np.ndarray) -> float:
    """Pearson correlation coefficient over all pixels.

    Examples
    --------
    >>> pearson(np.array([1., 2, 3]), np.array([2., 4, 6]))
    1.0
    """
    a, b = _check(pred, ref)
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float(np.clip((a * b).sum() / denom, -1.0, 1.0)) if denom > 0 else 0.0


def psnr(pred: np.ndarray, ref: np.ndarray, data_range: float | None = None) -> float:
    """Raw peak signal-to-noise ratio in dB; ``data_range`` defaults to the reference's max − min."""
    a, b = _check(pred, ref)
    rng = float(b.max() - b.min()) if data_range is None else float(data_range)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(rng**2 / mse))


def ssim(pred: np.ndarray, ref: np.ndarray, data_range: float | None = None) -> float:
    """Raw structural similarity (scikit-image), 2D or 3D, ``data_range`` from the reference."""
    from skimage.metrics import structural_similarity

    a, b = _check(pred, ref)
    rng = float(b.max() - b.min()) if data_range is None else float(data_range)
    win = min(7, *[s if s % 2 else s - 1 for s in a.shape])
    return float(structural_similarity(a, b, data_range=max(rng, 1e-12), win_size=max(win, 3)))


def percentile_normalize(image: np.ndarray, pmin: float = 0.1, pmax: float = 99.9) -> np.ndarray:
    """Percentile normalisation (CSBDeep's ``normalize``, no clipping), in float64.

    Parameters
    ----------
    image : ndarray
        Any shape; the percentiles are taken over all of it.
    pmin, pmax : float
        Percentiles (0–100, linear interpolation as :func:`numpy.percentile`) mapped to 0 and 1.

    Returns
    -------
    ndarray
        ``(image − p_low) / (p_high − p_low)``, float64, same shape. Where the percentiles
        coincide (an image constant on all but a sliver of pixels: a span within the rounding of
        numpy's interpolation, ≤ 4·n·eps of max − min) the full range max − min is used instead;
        a constant image becomes all zeros.

    Examples
    --------
    >>> percentile_normalize(np.array([0., 0, 5, 10, 10])).tolist()
    [0.0, 0.0, 0.5, 1.0, 1.0]
    >>> percentile_normalize(np.full(3, 7.0)).tolist()
    [0.0, 0.0, 0.0]
    """
    x = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(x, [pmin, pmax])
    full = x.max() - x.min()
    # The interpolation index p/100·(n − 1) is rounded to ≤ 2·n·eps, so two equal order
    # statistics can come out up to that fraction of max − min apart: no real span.
    if hi - lo <= 4 * x.size * np.finfo(np.float64).eps * full:
        lo, hi = x.min(), x.max()
    return x - lo if hi <= lo else (x - lo) / (hi - lo)


def normalize_minmse(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The affine map ``α·pred + β`` of least squared error to ``target`` (CSBDeep's ``normalize_minmse``).

    Closed form: ``α = cov(pred, target) / var(pred)``, ``β = mean(target) − α·mean(pred)``;
    α may be negative (an anti-correlated prediction). Unlike CSBDeep, no ``1e-10`` is added to
    ``var(pred)``, so the fit is exact whatever the prediction's units (which makes the result
    invariant to any affine change of ``pred``).

    Parameters
    ----------
    pred, target : ndarray
        Same shape.

    Returns
    -------
    ndarray
        The fitted prediction, float64. A constant prediction (``var(pred) = 0``) gets α = 0:
        every pixel becomes ``mean(target)``, the best constant.

    Examples
    --------
    >>> normalize_minmse(np.array([500., 537, 574]), np.array([0., 1, 2])).tolist()
    [0.0, 1.0, 2.0]
    >>> normalize_minmse(np.array([3., 3, 3]), np.array([0., 1, 5])).tolist()
    [2.0, 2.0, 2.0]
    """
    x, t = _check(pred, target)
    xc = x - x.mean()
    scale = np.abs(xc).max(initial=0.0)
    if scale == 0:
        return np.full_like(t, t.mean())
    u = xc / scale  # |u| ≤ 1 with one element ±1: Σu² ≥ 1, no under- or overflow whatever the units
    alpha = float(np.vdot(u, t - t.mean()) / np.vdot(u, u))
    return t.mean() + alpha * u


def care_normalize(
    pred: np.ndarray, target: np.ndarray, pmin: float = 0.1, pmax: float = 99.9
) -> tuple[np.ndarray, np.ndarray]:
    """CARE's evaluation normalisation of a prediction/target pair.

    The target is percentile-normalised (:func:`percentile_normalize`, ``pmin``–``pmax`` → 0–1)
    and the prediction is affinely fitted to the normalised target by least squares
    (:func:`normalize_minmse`), as in CSBDeep's evaluation of CARE (Weigert et al., Nat. Methods
    2018).

    Returns
    -------
    pred_n, target_n : ndarray
        The fitted prediction and the normalised target, float64.

    Examples
    --------
    >>> p, t = care_normalize(np.array([500., 537, 574]), np.array([10., 20, 30]), pmin=0, pmax=100)
    >>> p.tolist(), t.tolist()
    ([0.0, 0.5, 1.0], [0.0, 0.5, 1.0])
    """
    _check(pred, target)
    target_n = percentile_normalize(target, pmin, pmax)
    return normalize_minmse(pred, target_n), target_n


def normalized_psnr(
    pred: np.ndarray, target: np.ndarray, pmin: float = 0.1, pmax: float = 99.9, data_range: float = 1.0
) -> float:
    """PSNR in dB after CARE's normalisation (:func:`care_normalize`).

    Parameters
    ----------
    pred, target : ndarray
        Same shape, any units.
    pmin, pmax : float
        Percentiles of the target mapped to 0 and 1.
    data_range : float
        Peak of the PSNR in normalised units: 1.0, the ``pmin``–``pmax`` span of the normalised
        target (CSBDeep's ``compare_psnr(gt, x, data_range=1.)``).

    Returns
    -------
    float
        ``10·log10(data_range² / MSE)``; ``inf`` where the fit is exact (MSE 0), which includes
        every prediction against a constant target. A constant prediction against a varying
        target scores the best constant, ``10·log10(data_range² / var(target_n))``.

    Examples
    --------
    Target percentiles 0 and 10, so the normalised target is [0, 0, 1, 1]; the fitted prediction
    is (2/7)·(x − 1) = [0, 2/7, 4/7, 8/7], MSE 1/14, PSNR 10·log10(14):

    >>> round(normalized_psnr(np.array([1., 2, 3, 5]), np.array([0., 0, 10, 10])), 4)
    11.4613
    """
    return psnr(*care_normalize(pred, target, pmin, pmax), data_range=data_range)


def normalized_ssim(
    pred: np.ndarray, target: np.ndarray, pmin: float = 0.1, pmax: float = 99.9, data_range: float = 1.0
) -> float:
    """SSIM (as :func:`ssim`) after CARE's normalisation (:func:`care_normalize`), ``data_range`` 1.0.

    Parameters and the normalisation as :func:`normalized_psnr`. A constant target gives 1.0 (the
    fitted prediction equals it); a constant prediction gives the SSIM of the best constant,
    small but finite.

    Examples
    --------
    >>> t = np.add.outer(np.arange(8.0), np.arange(8.0))
    >>> round(normalized_ssim(37 * t + 500, t), 6)
    1.0
    """
    return ssim(*care_normalize(pred, target, pmin, pmax), data_range=data_range)


def dice(pred_mask: np.ndarray, ref_mask: np.ndarray) -> float:
    """Dice coefficient of two binary masks (1.0 when both are empty)."""
    a, b = _check(pred_mask, ref_mask)
    a, b = a > 0.5, b > 0.5
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(a, b).sum() / total)
