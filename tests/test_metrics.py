import numpy as np
import pytest

from efficientbioai.tasks.image_metrics import dice, pearson, psnr, ssim


def test_pearson_scale_invariant_and_bounded():
    rng = np.random.default_rng(0)
    a = rng.random((32, 32))
    assert pearson(3 * a + 1, a) == pytest.approx(1.0)
    assert pearson(-a, a) == pytest.approx(-1.0)
    assert abs(pearson(rng.random((64, 64)), rng.random((64, 64)))) < 0.1


def test_psnr_known_value():
    ref = np.zeros((10, 10))
    ref[0, 0] = 1.0
    pred = ref + 0.1  # mse 0.01, range 1 -> 20 dB
    assert psnr(pred, ref) == pytest.approx(20.0)
    assert psnr(ref, ref) == float("inf")


def test_ssim_2d_3d():
    rng = np.random.default_rng(0)
    a = rng.random((16, 32, 32))
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a + rng.normal(0, 0.3, a.shape), a) < 0.9
    assert ssim(a[0], a[0]) == pytest.approx(1.0)


def test_dice():
    a = np.zeros((4, 4))
    a[:2] = 1
    b = np.zeros((4, 4))
    b[1:3] = 1
    assert dice(a, b) == pytest.approx(0.5)
    assert dice(np.zeros(3), np.zeros(3)) == 1.0


def test_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        pearson(np.zeros((2, 2)), np.zeros((3, 3)))
