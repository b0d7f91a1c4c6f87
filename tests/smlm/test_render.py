import numpy as np
import pytest

from efficientbioai.smlm.render import render, save_rendering


def test_histogram_counts_and_bounds():
    locs = np.array([[1, 5.0, 5.0], [2, 5.0, 6.0], [3, 995.0, 15.0], [4, 2000.0, 10.0]])
    img = render(locs, (100, 1000), pixel_size=10)
    assert img.shape == (10, 100)
    assert img[0, 0] == 2 and img[1, 99] == 1 and img.sum() == 3  # the one outside is dropped


def test_gaussian_preserves_total_and_uses_uncertainty():
    locs = np.array([[1, 500.0, 500.0, 0, 1000, 20.0]])
    img = render(locs, (1000, 1000), pixel_size=10, method="gaussian")
    assert img.sum() == pytest.approx(1.0, rel=1e-3)
    wide = render(locs, (1000, 1000), pixel_size=10, method="gaussian", sigma_nm=60.0)
    assert wide.max() < img.max()


def test_save_tiff_and_png(tmp_path):
    img = render(np.array([[1, 50.0, 50.0]]), (100, 100), 10, "gaussian", 15.0)
    tif, png = save_rendering(img, tmp_path / "sr")
    assert tif.exists() and png.exists() and png.read_bytes()[:4] == b"\x89PNG"
