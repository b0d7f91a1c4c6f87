import numpy as np
import pytest

from efficientbioai.smlm.crlb import crlb
from efficientbioai.smlm.psf import AstigmaticPSF, GaussianPSF


def test_gaussian_crlb_matches_thompson_at_high_snr():
    b = crlb(GaussianPSF(130.0), [0.0], photons=20000, background=0.01, emccd=False)[0]
    thompson = np.sqrt((130.0**2 + 100.0**2 / 12) / 20000)
    assert b[0] == pytest.approx(thompson, rel=0.1) and b[1] == pytest.approx(thompson, rel=0.1)
    assert np.isnan(b[2])


def test_more_photons_and_less_background_help_and_emccd_costs_sqrt2():
    psf = AstigmaticPSF(100.0)
    low = crlb(psf, [0.0], photons=1000, background=50)[0]
    high = crlb(psf, [0.0], photons=10000, background=50)[0]
    assert (high[:3] < low[:3]).all()
    plain = crlb(psf, [0.0], photons=1000, background=50, emccd=False)[0]
    assert low[0] == pytest.approx(np.sqrt(2) * plain[0])


def test_astigmatic_axial_bound_is_finite_over_range():
    z = np.linspace(-700, 700, 8)
    b = crlb(AstigmaticPSF(100.0), z, photons=5000, background=20)
    assert b.shape == (8, 5) and np.isfinite(b[:, 2]).all() and (b[:, 2] < 100).all()


def test_pupil_psfs_have_bounds_and_tetrapod_covers_a_longer_range():
    from efficientbioai.smlm.pupil import PRESETS, PupilPSF

    z = np.array([-600.0, 0.0, 600.0])
    astig = crlb(PupilPSF(zernike_nm=PRESETS["astigmatic"], oversample=2), z, photons=5000, background=20)
    assert np.isfinite(astig).all() and (astig[:, 0] < 30).all() and (astig[:, 2] < 100).all()
