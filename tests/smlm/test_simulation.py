import numpy as np
import pytest

from efficientbioai.smlm.camera import EMCCD, SCMOS, Camera
from efficientbioai.smlm.psf import AstigmaticPSF, GaussianPSF
from efficientbioai.smlm.simulate import EmitterSampler, simulate_stack


def test_gaussian_psf_is_normalised_and_centred():
    img = GaussianPSF(130.0).render(np.array([[1650.0, 1550.0, 0.0]]), np.array([1.0]), (32, 32), 100.0)
    assert img.sum() == pytest.approx(1.0, abs=1e-4)
    rows, cols = np.indices(img.shape)
    # centroid in pixel coordinates: x_nm / pixel_size - 0.5
    assert (cols * img).sum() / img.sum() == pytest.approx(16.0, abs=1e-3)
    assert (rows * img).sum() / img.sum() == pytest.approx(15.0, abs=1e-3)


def test_astigmatism_elongates_along_x_below_focus_and_y_above():
    psf = AstigmaticPSF(sigma_nm=100.0)
    sx, sy = psf.sigmas(np.array([-500.0, 0.0, 500.0]))
    assert sx[0] < sy[0] and sx[1] == pytest.approx(sy[1]) and sx[2] > sy[2]
    img = psf.render(np.array([[1600.0, 1600.0, 400.0]]), np.array([1.0]), (32, 32), 100.0)
    rows, cols = np.indices(img.shape)
    var_x = ((cols - 15.5) ** 2 * img).sum()
    var_y = ((rows - 15.5) ** 2 * img).sum()
    assert var_x > 1.5 * var_y


def test_camera_mean_response_and_noise():
    rng = np.random.default_rng(0)
    photons = np.full((200, 200), 50.0)
    for cam in (EMCCD, SCMOS):
        adu = cam.forward(photons, rng)
        assert cam.to_photons(adu).mean() == pytest.approx(50.0, rel=0.05)
    emccd_var = EMCCD.to_photons(EMCCD.forward(photons, rng)).var()
    scmos_var = SCMOS.to_photons(SCMOS.forward(photons, rng)).var()
    assert emccd_var > 1.6 * scmos_var  # EM excess noise roughly doubles the variance


def test_camera_rejects_zero_gain():
    with pytest.raises(ValueError, match="None for an sCMOS"):
        Camera(em_gain=0)


def test_stack_density_and_truth_units():
    sampler = EmitterSampler(density_per_um2=2.0, z_range_nm=(-500, 500), margin_px=0)
    frames, truth = simulate_stack(50, (40, 40), 100.0, AstigmaticPSF(), sampler, seed=3)
    assert frames.shape == (50, 40, 40) and frames.dtype == np.float32
    per_frame = len(truth) / 50
    assert per_frame == pytest.approx(2.0 * 16.0, rel=0.1)  # 2 /µm² × (4 µm)²
    assert truth[:, 0].min() == 1 and truth[:, 0].max() == 50
    assert truth[:, 1].max() <= 4000 and truth[:, 3].min() >= -500
    again, _ = simulate_stack(50, (40, 40), 100.0, AstigmaticPSF(), sampler, seed=3)
    np.testing.assert_array_equal(frames, again)
