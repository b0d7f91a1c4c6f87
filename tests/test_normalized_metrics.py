"""PSNR/SSIM after CARE's normalisation (target percentile-normalised, prediction affinely fitted).

Everything here is float64; tolerances are bounds on float64 rounding (``EPS``) derived next to
each check, not values seen on one CPU.
"""

import warnings

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from efficientbioai.evaluation.report import notes, summary_rows
from efficientbioai.tasks.image_metrics import (
    care_normalize,
    normalize_minmse,
    normalized_psnr,
    normalized_ssim,
    pearson,
    percentile_normalize,
    psnr,
    ssim,
)
from efficientbioai.tasks.image_to_image import ImageToImageTask

EPS = np.finfo(np.float64).eps
C1, C2 = 0.01**2, 0.03**2  # scikit-image's SSIM constants (K1, K2 = 0.01, 0.03) at data range 1


def _target(seed: int = 0, shape=(64, 64)) -> np.ndarray:
    """A smooth image-like target in [0, 1] (blurred noise, rescaled)."""
    t = gaussian_filter(np.random.default_rng(seed).random(shape), 3.0)
    return (t - t.min()) / (t.max() - t.min())


def test_affine_units_score_high_normalized_low_raw():
    t = _target()
    sigma = 0.005  # noise in target units
    pred = 37 * (t + np.random.default_rng(1).normal(0, sigma, t.shape)) + 500
    t_n = percentile_normalize(t)
    # The fit minimises the MSE over all affine maps, so it does at least as well as the true
    # inverse map (pred − 500) / 37 carried into normalised units: an exact lower bound.
    lo, hi = np.percentile(t, [0.1, 99.9])
    true_map = ((pred - 500) / 37 - lo) / (hi - lo)
    bound = 10 * np.log10(1 / np.mean((true_map - t_n) ** 2))
    assert bound > 40  # σ / (hi − lo) ≈ 0.005 → ≈ 46 dB
    assert normalized_psnr(pred, t) >= bound - 1e-9
    # Raw: the error is ≈ 36·t + 500 against a range of 1, so PSNR ≤ 20·log10(1 / 500) ≈ −54 dB.
    assert psnr(pred, t) < -50
    # Raw SSIM's luminance term is ≤ 2·μx·μy / μx² ≈ 2 · 1 / 500 everywhere (μy ≤ 1, μx ≥ 500).
    assert abs(ssim(pred, t)) < 2 / 500 + 1e-6
    # Normalised: noise of σ_n ≈ 0.005 in normalised units leaves C2 / (C2 + σ_n²) ≈ 0.97 even in
    # flat windows, more where the target has structure.
    assert normalized_ssim(pred, t) > 0.9


def _fit_error(x, a, b, scale_of_fit):
    """Bound on |fitted(a·x + b) − fitted(x)| in normalised units.

    Forming y = a·x + b rounds each pixel by ≤ 2·EPS·(|a·x| + |b|); the mean (pairwise sum,
    ≤ log2 n roundings), the centring and the division by the peak add ≤ (3 + log2 n)·EPS of
    max|y|. Centring cancels all but max|y − ȳ| = |a|·max|x − x̄| of it, so relative to the
    spread the error is that many EPS times cond = max|y| / max|y − ȳ|. The slope's two dot
    products and the product α·u carry the same relative error again: ×4 in all, times the
    fitted image's spread around the target mean.
    """
    cond = (abs(a) * np.abs(x).max() + abs(b)) / (abs(a) * np.abs(x - x.mean()).max())
    return 4 * (5 + np.log2(x.size)) * EPS * cond * scale_of_fit


@pytest.mark.parametrize("a, b", [(37.0, 500.0), (-2.5, 0.0), (1e-4, 3.0), (1e3, -1e5), (2.0**-30, 0.0)])
def test_normalized_metrics_invariant_to_affine_rescaling(a, b):
    t = _target(2)
    x = t + np.random.default_rng(3).normal(0, 0.05, t.shape)
    p0, t_n = care_normalize(x, t)
    p1, t_n1 = care_normalize(a * x + b, t)
    assert np.array_equal(t_n, t_n1)
    delta = _fit_error(x, a, b, np.abs(p0 - t_n.mean()).max())
    assert np.abs(p1 - p0).max() <= delta
    # PSNR: residual r → r + e, |e| ≤ δ: |ΔMSE| ≤ 2·δ·rms(r) + δ², and ΔPSNR = (10 / ln 10)·Δln MSE.
    # Computing the two MSEs adds ≤ 2·log2(n)·EPS of relative error.
    rms = np.sqrt(np.mean((p0 - t_n) ** 2))
    d_psnr = 10 / np.log(10) * ((2 * delta * rms + delta**2) / rms**2 + 2 * np.log2(t.size) * EPS)
    assert normalized_psnr(a * x + b, t) == pytest.approx(normalized_psnr(x, t), abs=d_psnr)
    # SSIM: per window l·cs with |l|, |cs| ≤ 1. A pixel change ≤ δ moves the luminance term by
    # ≤ 2δ/√C1 (max over m of 2m / (m² + C1) is 1/√C1) and the (co)variances by ≤ 2·R·δ·49/48
    # (R: the images' spread, sample covariance over 7×7), so cs by ≤ 4.2·R·δ / C2. The SSIM's
    # own rounding (moments of values ≤ R, cancelled over ≥ C2) adds the same with δ → 100·EPS·R.
    R = max(np.ptp(p0), np.ptp(t_n))
    lipschitz = 2 / np.sqrt(C1) + 4.2 * R / C2
    d_ssim = lipschitz * (delta + 100 * EPS * R)
    assert normalized_ssim(a * x + b, t) == pytest.approx(normalized_ssim(x, t), abs=d_ssim)


def test_hand_checked_psnr():
    # Target percentiles (0.1, 99.9) of [0, 0, 10, 10] are 0 and 10 → t_n = [0, 0, 1, 1]. For
    # x = [1, 2, 3, 5]: x − x̄ = [−1.75, −0.75, 0.25, 2.25], Σ(x − x̄)(t_n − ½) = 2.5, Σ(x − x̄)² = 8.75,
    # α = 2/7, fitted = ½ + (2/7)(x − 2.75) = [0, 2/7, 4/7, 8/7], residual [0, 2, −3, 1]/7,
    # MSE = 14/196 = 1/14, PSNR = 10·log10(14). A few dozen roundings of O(1) numbers: 1e3·EPS.
    x, t = np.array([1.0, 2, 3, 5]), np.array([0.0, 0, 10, 10])
    np.testing.assert_allclose(normalize_minmse(x, percentile_normalize(t)), [0, 2 / 7, 4 / 7, 8 / 7], atol=1e3 * EPS)
    assert normalized_psnr(x, t) == pytest.approx(10 * np.log10(14), rel=1e3 * EPS)
    assert normalized_psnr(100 * x - 7, t) == pytest.approx(10 * np.log10(14), rel=1e3 * EPS)


T3 = np.array([[0.0, 0, 0], [0, 5, 10], [10, 10, 10]])  # percentiles 0 and 10 → t_n = T3 / 10


def _one_window_ssim(p, t):
    """SSIM of a 3×3 pair by hand: scikit-image's 3×3 window, cropped to the one full window,
    with sample (co)variances (n − 1 = 8)."""
    mp, mt = p.mean(), t.mean()
    vp, vt, cov = p.var(ddof=1), t.var(ddof=1), np.cov(p.ravel(), t.ravel())[0, 1]
    return (2 * mp * mt + C1) * (2 * cov + C2) / ((mp**2 + mt**2 + C1) * (vp + vt + C2))


def test_hand_checked_ssim():
    t_n = T3 / 10
    # Constant prediction: fitted to mean(t_n) = ½ everywhere; luminance term 1, covariance 0,
    # sample variance of t_n = (8 · ¼) / 8 = ¼: SSIM = C2 / (¼ + C2). PSNR: MSE = population
    # variance 2/9 → 10·log10(4.5).
    flat = np.full((3, 3), 42.0)
    assert normalized_ssim(flat, T3) == pytest.approx(C2 / (0.25 + C2), rel=1e3 * EPS)
    assert normalized_psnr(flat, T3) == pytest.approx(10 * np.log10(4.5), rel=1e3 * EPS)
    # A varying prediction: the fit by an independent least-squares solver (numpy.polyfit, SVD),
    # then the one-window formula. The two fits differ by ≤ κ·n·EPS (κ: condition number of [x, 1]).
    x = np.array([[1.0, 2, 3], [5, 4, 6], [9, 7, 8]])
    slope, offset = np.polyfit(x.ravel(), t_n.ravel(), 1)
    kappa = np.linalg.cond(np.stack([x.ravel(), np.ones(9)], axis=1))
    want = _one_window_ssim(slope * x + offset, t_n)
    assert 0.1 < want < 0.99
    assert normalized_ssim(x, T3) == pytest.approx(want, rel=10 * kappa * x.size * EPS / C2)


def test_constant_prediction_or_target_is_defined():
    t, x = _target(4, (16, 16)), np.random.default_rng(5).random((16, 16))
    # No floating-point warning may pass silently (divide by zero, invalid, overflow).
    with np.errstate(divide="raise", invalid="raise", over="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        # Constant target: normalised to zeros; every prediction fits it exactly (α = 0).
        for pred in (x, np.full_like(x, 3.0), -x):
            assert normalized_psnr(pred, np.full_like(t, 7.0)) == float("inf")
            assert normalized_ssim(pred, np.full_like(t, 7.0)) == 1.0
        # Constant prediction: the best constant, mean(t_n); PSNR 10·log10(1 / var(t_n)), finite.
        t_n = percentile_normalize(t)
        np.testing.assert_array_equal(normalize_minmse(np.full_like(t, 5.0), t_n), np.full_like(t, t_n.mean()))
        got = normalized_psnr(np.full_like(t, 5.0), t)
        assert got == pytest.approx(10 * np.log10(1 / t_n.var()), rel=1e3 * EPS)
        assert np.isfinite(normalized_ssim(np.full_like(t, 5.0), t))
        # Percentiles that coincide (one bright pixel in 1001): the full range is used instead.
        sparse = np.zeros(1001)
        sparse[500] = 5.0
        assert percentile_normalize(sparse).max() == 1.0
        assert np.isfinite(normalized_psnr(sparse + 0.1 * np.sin(np.arange(1001)), sparse))


def test_denoise_task_reports_normalized_and_raw():
    t = _target(6)
    pred = 37 * t + 500 + np.random.default_rng(7).normal(0, 0.1, t.shape)
    task = ImageToImageTask(None, None)  # score() needs neither config nor parser
    got = task.score(pred, t[None])  # a reference with a leading channel is matched to the output
    assert got == {
        "pearson": pearson(pred, t),
        "psnr": normalized_psnr(pred, t),
        "ssim": normalized_ssim(pred, t),
        "psnr_raw": psnr(pred, t),
        "ssim_raw": ssim(pred, t),
    }
    assert got["psnr"] > 30 > 0 > got["psnr_raw"] and got["ssim"] > 0.9 > 0.1 > got["ssim_raw"]
    assert ImageToImageTask.report_metrics == ("pearson", "psnr", "ssim")  # the raw ones in report.json only


def _report(metrics: list[str], task: str = "denoise") -> dict:
    row = {
        "variant": "torch:fp32",
        "engine": {"threads": 2},
        "latency": {"median_ms": 1.0, "p90_ms": 1.0, "batch_size": 1, "warmup": 1, "runs": 1},
        "units": 1,
        "units_per_s": 1.0,
        "energy_kwh": None,
        "energy_j_per_unit": None,
        "artefact_bytes": 1,
        "vs_ground_truth": {m: 1.0 for m in metrics},
        "vs_fp32": {m: 1.0 for m in metrics},
    }
    return {
        "task": task,
        "deployed": "torch:fp32",
        "machine": {"cpu": "cpu", "cores": 2},
        "model": {"tile": [1, 1, 64, 64]},
        "primary_metric": metrics[0],
        "report_metrics": metrics,
        "variants": [row],
    }


def test_report_columns_and_note():
    report = _report(list(ImageToImageTask.report_metrics))
    header, _ = summary_rows(report)
    assert {"PSNR dB", "SSIM"} <= set(header) and "psnr_raw" not in header
    [line] = [n for n in notes(report) if "CARE" in n]
    assert "0.1–99.9" in line and "least squares" in line and "psnr_raw/ssim_raw" in line
    assert not [n for n in notes(_report(["nmse", "psnr"], "reconstruct")) if "CARE" in n]  # Deep-STORM's own PSNR
