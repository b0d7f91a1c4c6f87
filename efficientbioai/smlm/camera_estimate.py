"""Estimate a camera's offset and gain from the data itself: photon transfer (mean–variance).

Shot noise makes a pixel's variance grow linearly with its mean signal::

    var(ADU) = F² · G · (mean − offset) + read variance

with ``G`` the ADU per photo-electron (EM gain included) and ``F²`` the excess noise factor: 2
for an EMCCD, 1 for sCMOS/CCD. SMLM stacks qualify: most pixels show background most of the
time. Frames where a pixel or its neighbours (5 × 5) are 3 σ above its median hold an emitter
and are left out; the pixel's background level is the average of the rest, and its variance
comes from differences of consecutive clean frames (which cancel the fixed pattern), trimmed
and corrected for the trimming. Pixels are grouped by level; a straight line through the groups gives ``G`` (slope /
F²) and, without dark frames, the offset (where the line meets zero variance, neglecting read
noise). Dark frames (shutter closed) give the offset and read noise directly, and the line is
then fitted through them. Illumination that varies across the field (it always does) provides
the range of levels; a perfectly flat background without dark frames is refused.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from efficientbioai.errors import InputError

#: Frames used at most: the statistics converge long before a 20,000-frame stack ends.
MAX_FRAMES = 1000
#: Without dark frames the line fit must pin the gain to 5 % (one standard error), else refused.
MAX_RELATIVE_SD = 0.05
FLAT = (
    "the background levels in these frames span too small a range to tell the offset from the gain "
    "(the fit's gain uncertainty is above 5 %); record ~20 dark frames (shutter closed, same settings) "
    "and pass them with --dark"
)


@dataclass(frozen=True)
class CameraEstimate:
    """What :func:`estimate_camera` measured (ADU; ``*_sd`` one standard error)."""

    offset: float
    offset_sd: float
    adu_per_electron: float
    adu_per_electron_sd: float
    read_sigma_adu: float | None
    excess_factor: float
    levels: int
    frames: int
    from_dark: bool

    def acquisition(self, em_gain: float | None, qe: float) -> dict:
        """The ``acquisition`` config block: ``e_per_adu`` = EM gain / measured ADU per electron."""
        e_per_adu = (em_gain or 1.0) / self.adu_per_electron
        block = {"offset": round(self.offset, 3), "e_per_adu": float(f"{e_per_adu:.5g}"), "em_gain": em_gain, "qe": qe}
        if self.read_sigma_adu is not None:  # from dark frames: ADU rms → electrons rms
            block["read_noise_e"] = float(f"{self.read_sigma_adu * e_per_adu:.4g}")
        return block


def _clipped(values: np.ndarray, axis: int, k: float = 4.0) -> np.ndarray:
    """``values`` with entries more than ``k`` robust sigmas from the median set to NaN."""
    med = np.median(values, axis=axis, keepdims=True)
    mad = 1.4826 * np.median(np.abs(values - med), axis=axis, keepdims=True)
    return np.where(np.abs(values - med) <= k * np.maximum(mad, 1e-6), values, np.nan)


def _clipped_var(values: np.ndarray, k: float = 2.5) -> float:
    """Variance of the core of ``values``: iteratively trimmed at ``k`` robust sigmas, corrected
    for the trimming (a normal distribution cut at ±k keeps ``truncnorm.var(-k, k)`` of its variance)."""
    from scipy.stats import truncnorm

    v = values[np.isfinite(values)]
    mu = np.median(v)
    sd = 1.4826 * np.median(np.abs(v - mu))
    kept = truncnorm.var(-k, k)
    for _ in range(8):
        core = v[np.abs(v - mu) <= k * sd]
        mu, new = core.mean(), float(np.sqrt(core.var(ddof=1) / kept))
        if abs(new - sd) <= 1e-4 * sd:
            break
        sd = new
    return float(sd**2)


def _pixel_stats(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: the background level (time average without emitter frames) and the
    frame-to-frame differences where neither frame has an emitter at or near that pixel."""
    from scipy.ndimage import binary_dilation

    med = np.median(stack, axis=0)
    sigma = 1.4826 * np.median(np.abs(stack - med), axis=0)
    bright = binary_dilation(stack - med > 3.0 * np.maximum(sigma, 1e-6), np.ones((1, 5, 5), bool))
    clean = np.where(bright, np.nan, stack)
    with warnings.catch_warnings():  # a pixel under emitters in every frame has no clean frame: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(clean, axis=0)
    diff = np.diff(clean, axis=0)
    return mean.ravel(), diff.reshape(len(diff), -1)


def estimate_camera(
    stack: np.ndarray, dark: np.ndarray | None = None, emccd: bool = False, levels: int = 16
) -> CameraEstimate:
    """Offset and ADU per electron of the camera that recorded ``stack`` (frames, H, W).

    Parameters
    ----------
    stack : ndarray
        At least 20 frames of raw camera ADU.
    dark : ndarray, optional
        Dark frames (frames, H, W) from the same camera: offset and read noise from them.
    emccd : bool
        An EMCCD (excess noise factor 2); else sCMOS/CCD (1).
    levels : int
        Groups of pixels by background level for the line fit.

    Examples
    --------
    >>> from efficientbioai.smlm.camera import SCMOS
    >>> rng = np.random.default_rng(0)
    >>> photons = np.linspace(5, 100, 64)[None, None, :] * np.ones((200, 64, 64))
    >>> movie = SCMOS.forward(photons, rng)                  # the truth: 2.0 ADU/e⁻, offset 100
    >>> est = estimate_camera(movie)                        # read noise (3 ADU) neglected: offset low
    >>> abs(est.adu_per_electron - 2.0) < 0.1, 90 < est.offset < 100
    (True, True)
    >>> est = estimate_camera(movie, dark=SCMOS.forward(np.zeros((20, 64, 64)), rng))
    >>> abs(est.adu_per_electron - 2.0) < 0.1, abs(est.offset - 99.5) < 0.5   # 99.5: the ADC floors
    (True, True)
    """
    stack = np.asarray(stack, np.float64)
    if stack.ndim != 3 or len(stack) < 20:
        raise InputError(f"camera estimation needs a stack of at least 20 frames (frames, H, W); got {stack.shape}")
    stack = stack[:MAX_FRAMES]
    excess = 2.0 if emccd else 1.0
    mean, diff = _pixel_stats(stack)
    usable = np.isfinite(mean)
    mean, diff = mean[usable], diff[:, usable]
    edges = np.unique(np.quantile(mean, np.linspace(0, 1, levels + 1)))
    groups = np.clip(np.searchsorted(edges, mean, side="right") - 1, 0, len(edges) - 2)
    m, v = [], []
    for g in range(len(edges) - 1):
        pick = groups == g
        if pick.sum() >= 4:
            m.append(float(np.median(mean[pick])))
            v.append(_clipped_var(diff[:, pick]) / 2.0)  # var(a − b) = 2 var
    m, v = np.array(m), np.array(v)
    if dark is not None:
        dark = np.asarray(dark, np.float64)
        if dark.ndim != 3 or len(dark) < 2:
            raise InputError(f"dark frames must be a stack (frames, H, W) of at least 2; got {dark.shape}")
        offset = float(np.mean(np.nanmean(_clipped(dark, 0), axis=0)))
        read_var = _clipped_var(np.diff(dark, axis=0).ravel()) / 2.0
        x, y = m - offset, v - read_var
        slope = float((x * y).sum() / (x * x).sum())
        resid = y - slope * x
        slope_sd = float(np.sqrt((resid**2).sum() / max(len(x) - 1, 1) / (x * x).sum()))
        offset_sd = float(np.std(dark) / np.sqrt(dark.size))
        read_sigma = float(np.sqrt(max(read_var, 0.0)))
    else:
        if len(m) < 3:
            raise InputError(FLAT)
        (slope, intercept), cov = np.polyfit(m, v, 1, cov=True)
        slope, intercept = float(slope), float(intercept)
        offset = -intercept / slope
        slope_sd = float(np.sqrt(cov[0, 0]))
        offset_sd = float(abs(offset) * np.sqrt(cov[1, 1] / intercept**2 + cov[0, 0] / slope**2))
        read_sigma = None
        if not slope > 0 or slope_sd > MAX_RELATIVE_SD * slope:
            raise InputError(FLAT)
    if slope <= 0:
        raise InputError("the variance does not grow with the signal in these frames; are they raw camera ADU?")
    return CameraEstimate(
        offset=float(offset),
        offset_sd=offset_sd,
        adu_per_electron=slope / excess,
        adu_per_electron_sd=slope_sd / excess,
        read_sigma_adu=read_sigma,
        excess_factor=excess,
        levels=len(m),
        frames=len(stack),
        from_dark=dark is not None,
    )
