import numpy as np
import pytest

from efficientbioai.smlm.pupil import PRESETS, PupilPSF, zernike


def _moments(img):
    r, c = np.indices(img.shape)
    s = img.sum()
    cx, cy = (c * img).sum() / s, (r * img).sum() / s
    return cx, cy, ((c - cx) ** 2 * img).sum() / s, ((r - cy) ** 2 * img).sum() / s


def test_zernike_values():
    rho, theta = np.array([1.0, 0.5]), np.array([0.0, 0.0])
    np.testing.assert_allclose(zernike(2, 0, rho, theta), [1.0, -0.5])  # defocus 2ρ² − 1
    np.testing.assert_allclose(zernike(2, 2, rho, theta), [1.0, 0.25])  # ρ² cos 2θ
    with pytest.raises(ValueError):
        zernike(3, 2, rho, theta)


@pytest.mark.parametrize("x, y", [(1050.0, 1050.0), (1080.0, 1020.0)])
def test_pupil_psf_is_centred_in_the_pixel_convention(x, y):
    img = PupilPSF().render(np.array([[x, y, 0.0]]), np.array([1.0]), (21, 21), 100.0)
    cx, cy, _, _ = _moments(img)
    assert cx == pytest.approx(x / 100 - 0.5, abs=0.02) and cy == pytest.approx(y / 100 - 0.5, abs=0.02)
    assert 0.9 < img.sum() <= 1.0


def test_astigmatism_flips_with_z():
    psf = PupilPSF(zernike_nm=PRESETS["astigmatic"])
    below = _moments(psf.render(np.array([[1050.0, 1050.0, -500.0]]), np.array([1.0]), (21, 21), 100.0))
    above = _moments(psf.render(np.array([[1050.0, 1050.0, 500.0]]), np.array([1.0]), (21, 21), 100.0))
    assert below[2] > 1.2 * below[3] and above[3] > 1.2 * above[2]


def test_engineered_psfs_spread_with_defocus():
    for name in ("saddle_point", "tetrapod_3um", "tetrapod_6um"):
        psf = PupilPSF(zernike_nm=PRESETS[name], oversample=2)
        focus = _moments(psf.render(np.array([[1050.0, 1050.0, 0.0]]), np.array([1.0]), (21, 21), 100.0))
        off = _moments(psf.render(np.array([[1050.0, 1050.0, 600.0]]), np.array([1.0]), (21, 21), 100.0))
        assert off[2] + off[3] > focus[2] + focus[3]


def test_bad_na():
    with pytest.raises(ValueError, match="NA"):
        PupilPSF(na=1.6)
