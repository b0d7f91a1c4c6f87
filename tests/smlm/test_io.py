import numpy as np
import pytest

from efficientbioai.errors import InputError
from efficientbioai.smlm.io import read_localizations, write_challenge, write_thunderstorm

LOCS = np.array([[1, 150.5, 250.25, -100.0, 2000.0, 12.5], [3, 1000.0, 20.0, 300.0, 800.0, 30.0]])


def test_thunderstorm_round_trip(tmp_path):
    path = write_thunderstorm(tmp_path / "locs.csv", LOCS)
    assert path.read_text().splitlines()[0] == (
        '"id","frame","x [nm]","y [nm]","z [nm]","intensity [photon]","uncertainty [nm]"'
    )
    np.testing.assert_allclose(read_localizations(path), LOCS)


def test_challenge_round_trip_and_headerless(tmp_path):
    path = write_challenge(tmp_path / "activations.csv", LOCS)
    back = read_localizations(path)
    np.testing.assert_allclose(back[:, :5], LOCS[:, :5])
    assert np.isnan(back[:, 5]).all()
    body = "\n".join(path.read_text().splitlines()[1:]) + "\n"
    (tmp_path / "noheader.csv").write_text(body)
    np.testing.assert_allclose(read_localizations(tmp_path / "noheader.csv")[:, :5], LOCS[:, :5])


def test_2d_thunderstorm_export_without_z(tmp_path):
    (tmp_path / "ts.csv").write_text(
        '"id","frame","x [nm]","y [nm]","sigma [nm]","intensity [photon]","offset [photon]",'
        '"bkgstd [photon]","uncertainty_xy [nm]"\n1,2,100.0,200.0,120.0,500.0,10.0,3.0,15.0\n'
    )
    t = read_localizations(tmp_path / "ts.csv")
    np.testing.assert_allclose(t, [[2, 100, 200, 0, 500, 15]])


def test_missing_columns_and_bad_rows(tmp_path):
    (tmp_path / "bad.csv").write_text("frame,x [nm],intensity\n1,2,3\n")
    with pytest.raises(InputError, match=r"missing column\(s\) \['y'\]"):
        read_localizations(tmp_path / "bad.csv")
    (tmp_path / "short.csv").write_text("frame,x,y\n1,2\n")
    with pytest.raises(InputError, match="not numeric or is short"):
        read_localizations(tmp_path / "short.csv")
    with pytest.raises(InputError, match="not found"):
        read_localizations(tmp_path / "none.csv")
