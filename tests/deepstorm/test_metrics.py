"""NMSE / PSNR and the ground-truth rendering, on inputs whose answers are known."""

import numpy as np
import pytest

from efficientbioai.deepstorm.reconstruction_metrics import nmse, psnr, reconstruction_scores, truth_image


def test_nmse_and_psnr_on_known_values():
    truth = np.array([0.0, 1.0, 0.0, 1.0])
    assert nmse(truth, truth) == 0.0
    assert nmse(np.zeros(4), truth) == 100.0
    assert nmse(np.array([0.0, 2.0, 0.0, 1.0]), truth) == pytest.approx(50.0)  # ‖e‖² = 1, ‖x‖² = 2
    # MSE = 0.01 / 4 with a peak of 1 → 20·log10(1 / 0.05) = 26.02 dB
    assert psnr(np.array([0.0, 0.9, 0.0, 1.0]), truth) == pytest.approx(26.0206, abs=1e-4)
    assert psnr(truth, truth) == float("inf")


def test_scores_are_scale_free_and_blur_both_images():
    rng = np.random.default_rng(0)
    truth = (rng.random((32, 32)) > 0.97).astype(float)
    # identical up to scale: 0 % and infinite PSNR (unit-sum normalisation)
    same = reconstruction_scores(7.5 * truth, truth)
    assert same["nmse"] < 1e-20 and same["psnr"] > 200
    # an empty prediction is 100 % NMSE
    assert reconstruction_scores(np.zeros_like(truth), truth)["nmse"] == pytest.approx(100.0)
    # a one-pixel shift is penalised less when blurred more
    shifted = np.roll(truth, 1, axis=1)
    sharp = reconstruction_scores(shifted, truth, sigma_px=0.3)["nmse"]
    soft = reconstruction_scores(shifted, truth, sigma_px=2.0)["nmse"]
    assert soft < sharp


def test_shapes_must_match():
    with pytest.raises(ValueError, match="same grid"):
        reconstruction_scores(np.zeros((8, 8)), np.zeros((16, 16)))


def test_truth_image_counts_emitters_in_their_fine_pixel():
    table = np.array([[1, 20.0, 30.0], [2, 20.0, 30.0], [1, 99.0, 0.0]])  # frame, x, y (nm)
    img = truth_image(table, (1, 1), 100.0, 8)
    assert img.shape == (8, 8) and img.sum() == 3
    assert img[2, 1] == 2  # y 30 nm → row 2, x 20 nm → col 1 on the 12.5 nm grid
    assert img[0, 7] == 1
