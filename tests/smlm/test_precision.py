"""The single-emitter CRLB test: isolated emitters, one z per frame, RMSE per z against the bound."""

import numpy as np
import pytest

from efficientbioai.smlm.crlb import crlb
from efficientbioai.smlm.precision import precision_test, precision_vs_crlb, simulate_precision_stack, summarize
from efficientbioai.smlm.settings import SimulationSection

SIM = SimulationSection(
    psf={"kind": "astigmatic", "sigma_nm": 100.0, "focal_offset_nm": 250.0, "depth_nm": 280.0},
    z_range_nm=[-600.0, 600.0],
)


def test_stack_holds_isolated_emitters_one_z_per_frame():
    z = np.array([-300.0, 0.0, 450.0])
    frames, truth = simulate_precision_stack(SIM, z, per_z=25, photons=3000, background=10, spacing_px=16)
    assert frames.shape == (6, 64, 64) and frames.dtype == np.float32  # 16 per 64×64 frame: 2 frames per z
    assert len(truth) == 75 and set(truth[:, 3]) == set(z) and np.all(truth[:, 4] == 3000)
    for f in np.unique(truth[:, 0]):
        rows = truth[truth[:, 0] == f]
        assert len(set(rows[:, 3])) == 1
        d = np.linalg.norm(rows[:, None, 1:3] - rows[None, :, 1:3], axis=-1) + np.eye(len(rows)) * 1e9
        assert d.min() >= 8 * SIM.pixel_size  # half the spacing: far beyond the PSF
    xy_px = truth[:, 1:3] / SIM.pixel_size
    assert xy_px.min() >= 4 and xy_px.max() <= 60


def test_rmse_of_a_known_error_and_the_bound_with_qe():
    z = np.array([-400.0, 0.0, 400.0])
    _, truth = simulate_precision_stack(SIM, z, per_z=400, photons=5000, background=20)
    rng = np.random.default_rng(1)
    pred = truth.copy()
    pred[:, 1:3] += rng.normal(0, 6.0, (len(truth), 2))
    pred[:, 3] += rng.normal(0, 20.0, len(truth))
    rows = precision_vs_crlb(pred[100:], truth, SIM, 5000, 20)  # the first 100 (z = -400) partly missed
    assert [r.emitters for r in rows] == [400, 400, 400] and [r.found for r in rows] == [300, 400, 400]
    for r in rows:
        assert r.rmse_lateral == pytest.approx(6.0, rel=0.1) and r.rmse_axial == pytest.approx(20.0, rel=0.1)
        bound = crlb(SIM.psf.build(), [r.z], 0.9 * 5000, 0.9 * 20, SIM.pixel_size)[0]  # QE 0.9: detected photons
        assert r.crlb_lateral == pytest.approx(np.sqrt((bound[0] ** 2 + bound[1] ** 2) / 2))
    s = summarize(rows)
    assert s["recall"] == pytest.approx(1100 / 1200)
    assert s["ratio_lateral"] == pytest.approx(s["rmse_lateral"] / s["crlb_lateral"])
    assert s["crlb_lateral"] < s["rmse_lateral"] < 7


def test_precision_test_runs_a_localizer_over_the_axial_range():
    seen = []

    def perfect(stack: np.ndarray) -> np.ndarray:
        seen.append(stack.shape)
        _, truth = simulate_precision_stack(SIM, np.linspace(-600, 600, 5), per_z=16, photons=4000, background=30)
        return truth

    rows, s = precision_test(perfect, SIM, positions=5, per_z=16, photons=4000, background=30)
    assert seen == [(5, 64, 64)] and [r.z for r in rows] == [-600, -300, 0, 300, 600]
    assert s["recall"] == 1 and s["rmse_lateral"] == 0 and s["ratio_lateral"] == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="spacing_px"):
        simulate_precision_stack(SIM, [0.0], spacing_px=128)
    with pytest.raises(ValueError, match="per_z"):
        simulate_precision_stack(SIM, [0.0], per_z=0)
