"""Reconstruction quality: NMSE (%) and PSNR (dB) of a super-resolution image against the
ground-truth image rendered on the same grid from the true positions.

Definitions (one convention, used everywhere in this package):

1. **Ground truth** — every true emitter of every frame counted in the fine pixel that
   contains it (a histogram on the ``pixel_size / upsample`` grid, origin at the camera's
   top-left corner), see :func:`truth_image`.
2. **Both images** are blurred with the same small Gaussian (σ = ``metric_sigma_px`` fine
   pixels, default 1 — the kernel of the training targets, so the metric compares what the loss
   compares) and then **normalised to unit sum**. Unit sum makes the scores independent of the
   network's intensity scale and of the number of frames, and — unlike min-max — no single hot
   pixel rescales the whole image.
3. ``NMSE = 100 · ‖x̂ − x‖² / ‖x‖²`` (%), with x̂ the prediction and x the ground truth.
4. ``PSNR = 20 · log10(max(x) / √MSE)`` (dB), with ``MSE`` the mean squared difference and the
   peak taken from the ground truth (the reference, not the prediction).

An all-zero prediction scores NMSE = 100 %; an all-zero ground truth cannot be scored (NaN).
"""

from __future__ import annotations

import numpy as np

from efficientbioai.deepstorm.kernel import blur
from efficientbioai.smlm.render import render


def truth_image(truth: np.ndarray, frame_shape: tuple[int, int], pixel_size: float, upsample: int) -> np.ndarray:
    """Histogram of the true positions (table ``frame, x, y, ...`` in nm) on the fine grid.

    Examples
    --------
    >>> img = truth_image(np.array([[1, 20.0, 30.0], [2, 20.0, 30.0]]), (2, 2), 100.0, 8)
    >>> img.shape, float(img[2, 1]), float(img.sum())
    ((16, 16), 2.0, 2.0)
    """
    field = (frame_shape[0] * pixel_size, frame_shape[1] * pixel_size)
    return render(truth, field, pixel_size / upsample, "histogram")


def _prepare(image: np.ndarray, sigma_px: float) -> np.ndarray:
    x = blur(np.asarray(image, np.float64), sigma_px) if sigma_px > 0 else np.asarray(image, np.float64)
    total = x.sum()
    return x / total if total > 0 else x


def nmse(prediction: np.ndarray, truth: np.ndarray) -> float:
    """``100 · ‖x̂ − x‖² / ‖x‖²`` of two images as given (no blur or normalisation), in %.

    Examples
    --------
    >>> nmse(np.array([1.0, 1.0]), np.array([1.0, 0.0]))
    100.0
    """
    p, t = np.asarray(prediction, np.float64), np.asarray(truth, np.float64)
    denom = float((t**2).sum())
    return float(100.0 * ((p - t) ** 2).sum() / denom) if denom > 0 else float("nan")


def psnr(prediction: np.ndarray, truth: np.ndarray) -> float:
    """``20 · log10(max(x) / √mean((x̂ − x)²))`` in dB, peak from the reference ``truth``.

    Examples
    --------
    >>> round(psnr(np.array([0.0, 0.9]), np.array([0.0, 1.0])), 2)  # MSE 0.005
    23.01
    """
    p, t = np.asarray(prediction, np.float64), np.asarray(truth, np.float64)
    mse = float(((p - t) ** 2).mean())
    peak = float(t.max())
    if peak <= 0:
        return float("nan")
    return float("inf") if mse == 0 else float(20.0 * np.log10(peak / np.sqrt(mse)))


def reconstruction_scores(prediction: np.ndarray, truth: np.ndarray, sigma_px: float = 1.0) -> dict[str, float]:
    """``{"nmse": %, "psnr": dB}`` after blurring both images and normalising them to unit sum."""
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {prediction.shape} and ground truth {truth.shape} must be on the same grid")
    p, t = _prepare(prediction, sigma_px), _prepare(truth, sigma_px)
    return {"nmse": nmse(p, t), "psnr": psnr(p, t)}
