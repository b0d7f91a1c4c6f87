import numpy as np
import pytest

from efficientbioai.smlm.localization_metrics import efficiency, match_localizations, score_localizations


def test_perfect_and_empty():
    truth = np.array([[1, 100, 100, 0], [2, 500, 500, 100.0]])
    s = score_localizations(truth, truth)
    assert (s.tp, s.fp, s.fn, s.jaccard, s.rmse_lateral) == (2, 0, 0, 1.0, 0.0)
    assert s.efficiency_lateral == 100.0
    empty = score_localizations(np.zeros((0, 4)), truth)
    assert (empty.tp, empty.fn, empty.jaccard) == (0, 2, 0.0)


def test_tolerances_and_frames():
    truth = np.array([[1, 0, 0, 0], [2, 0, 0, 0.0]])
    pred = np.array([[1, 240, 0, 0], [2, 260, 0, 0.0], [1, 0, 0, 600.0]])
    pi, gi = match_localizations(pred, truth)
    assert list(pi) == [0] and list(gi) == [0]  # 260 nm lateral and 600 nm axial are too far


def test_rmse_definition_is_not_halved():
    truth = np.array([[1, 0, 0, 0.0]])
    s = score_localizations(np.array([[1, 30, 40, 20.0]]), truth)
    assert s.rmse_lateral == pytest.approx(50.0)  # sqrt(30² + 40²), not divided by 2·TP
    assert s.rmse_axial == pytest.approx(20.0)
    assert s.efficiency_lateral == pytest.approx(efficiency(1.0, 50.0, 1.0)) == pytest.approx(50.0)


def test_greedy_versus_hungarian():
    # p0 is 10 nm from t0 and 240 nm from t1; p1 reaches only t0 (200 nm). Greedy pairs p0-t0
    # first and leaves p1 and t1 unmatched; the optimal assignment matches both.
    truth = np.array([[1, 0, 0, 0], [1, 250, 0, 0.0]])
    pred = np.array([[1, 10, 0, 0], [1, -200, 0, 0.0]])
    assert score_localizations(pred, truth, method="greedy").tp == 1
    assert score_localizations(pred, truth, method="hungarian").tp == 2


def test_bad_table():
    with pytest.raises(ValueError, match="columns frame, x, y, z"):
        score_localizations(np.zeros((3, 2)), np.zeros((0, 4)))


def test_rmse_by_z_and_plot(tmp_path):
    from efficientbioai.smlm.localization_metrics import rmse_by_z
    from efficientbioai.smlm.plots import plot_rmse_vs_crlb

    rng = np.random.default_rng(0)
    z = rng.uniform(-600, 600, 400)
    truth = np.column_stack([np.arange(400) + 1, np.full(400, 500.0), np.full(400, 500.0), z])
    pred = truth + np.column_stack([np.zeros(400), rng.normal(0, 10, (400, 2)), rng.normal(0, 30, 400)])
    centres, lat, ax = rmse_by_z(pred, truth, np.linspace(-600, 600, 7))
    assert len(centres) == 6
    assert np.allclose(lat, 10, rtol=0.3) and np.allclose(ax, 30, rtol=0.3)
    png = plot_rmse_vs_crlb(centres, lat, ax, lat * 0.8, ax * 0.8, tmp_path / "p.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
