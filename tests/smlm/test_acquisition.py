"""The acquisition camera: conversion into the training camera's units, photon-transfer
estimation of offset and gain, and a localizer trained on one camera running on another."""

from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from efficientbioai.cli import main
from efficientbioai.errors import InputError
from efficientbioai.evaluation.camera_experiment import OTHER_SCMOS, localize_with_cameras
from efficientbioai.smlm.acquisition import AcquisitionSection, CameraConversion, adu_per_photon
from efficientbioai.smlm.camera import EMCCD, SCMOS
from efficientbioai.smlm.camera_estimate import estimate_camera
from efficientbioai.smlm.psf import GaussianPSF

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_conversion_maps_one_cameras_mean_response_onto_the_others():
    photons = np.linspace(0, 500, 64, dtype=np.float32).reshape(8, 8)
    adu_b = photons * adu_per_photon(OTHER_SCMOS) + OTHER_SCMOS.baseline  # what camera B records on average
    block = AcquisitionSection(offset=OTHER_SCMOS.baseline, e_per_adu=OTHER_SCMOS.e_per_adu, qe=OTHER_SCMOS.qe)
    got = CameraConversion(block, EMCCD)(adu_b)
    want = photons * adu_per_photon(EMCCD) + EMCCD.baseline
    np.testing.assert_allclose(got, want, rtol=8 * np.finfo(np.float32).eps, atol=1e-3)  # three float32 roundings
    overall = AcquisitionSection(offset=OTHER_SCMOS.baseline, adu_per_photon=adu_per_photon(OTHER_SCMOS))
    np.testing.assert_allclose(CameraConversion(overall, EMCCD)(adu_b), want, rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="exactly one of e_per_adu or adu_per_photon"):
        AcquisitionSection(offset=0, e_per_adu=1.0, adu_per_photon=1.0)


def test_an_offset_map_is_applied_per_pixel(tmp_path):
    offsets = np.random.default_rng(0).normal(100, 5, (8, 8)).astype(np.float32)
    tifffile.imwrite(tmp_path / "offset.tif", offsets)
    block = AcquisitionSection(offset_map=tmp_path / "offset.tif", adu_per_photon=adu_per_photon(EMCCD))
    got = CameraConversion(block, EMCCD)(np.broadcast_to(offsets, (3, 8, 8)))
    np.testing.assert_allclose(got, EMCCD.baseline, atol=1e-4)  # dark frames land on the training baseline
    with pytest.raises(InputError, match="offset_map.*is \\(8, 8\\) but the frames are \\(9, 9\\)"):
        CameraConversion(block, EMCCD)(np.zeros((1, 9, 9)))


def _uneven_movie(camera, rng, frames=200, shape=(64, 64)):
    """Blinking-free emitters on an illumination gradient (5–105 photons): what real fields look like."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    background = 5 + 100 * (xx / shape[1]) * (0.6 + 0.4 * yy / shape[0])
    psf, out = GaussianPSF(100.0), np.empty((frames, *shape))
    for t in range(frames):
        n = rng.poisson(8)
        em = np.column_stack([rng.uniform(300, 6100, n), rng.uniform(300, 6100, n), np.zeros(n)])
        out[t] = psf.render(em, rng.uniform(2000, 8000, n), shape, 100.0) + background
    return camera.forward(out, rng)


@pytest.mark.parametrize("camera, emccd", [(EMCCD, True), (SCMOS, False), (OTHER_SCMOS, False)])
def test_gain_and_offset_estimated_within_10_percent(camera, emccd):
    rng = np.random.default_rng(7)
    movie = _uneven_movie(camera, rng)
    true_gain = (camera.em_gain or 1.0) / camera.e_per_adu
    est = estimate_camera(movie, emccd=emccd)
    assert abs(est.adu_per_electron / true_gain - 1) < 0.10
    assert abs(est.offset - camera.baseline) < 0.1 * (np.median(movie) - camera.baseline)
    dark = camera.forward(np.zeros((20, 64, 64)), rng)
    with_dark = estimate_camera(movie, dark=dark, emccd=emccd)
    assert abs(with_dark.adu_per_electron / true_gain - 1) < 0.10 and abs(with_dark.offset - camera.baseline) < 1.0


def test_a_flat_background_without_dark_frames_is_refused():
    rng = np.random.default_rng(3)
    movie = SCMOS.forward(np.full((100, 32, 32), 40.0), rng)
    with pytest.raises(InputError, match="pass them with --dark"):
        estimate_camera(movie)
    dark = SCMOS.forward(np.zeros((20, 32, 32)), rng)
    assert abs(estimate_camera(movie, dark=dark).adu_per_electron / 2.0 - 1) < 0.10


def test_a_model_trained_on_one_camera_localizes_another_once_converted():
    """The shipped 2D DilatedLoc (EMCCD) on the same emitters recorded by an sCMOS: raw it loses
    emitters; converted with the true or the estimated camera block it matches its own camera."""
    rows, _ = localize_with_cameras(CONFIGS / "dilatedloc_gauss2d.yaml", frames=32)
    jaccard = {r["conversion"]: r["jaccard"] for r in rows}
    matched = jaccard["none (matched)"]
    assert matched > 0.85
    assert abs(jaccard["true camera block"] - matched) <= 0.02
    assert abs(jaccard["estimated block"] - matched) <= 0.02
    assert jaccard["none"] < matched - 0.02  # without the conversion the camera mismatch costs emitters


def test_camera_command_writes_a_block_the_config_accepts(tmp_path, capsys):
    rng = np.random.default_rng(5)
    tifffile.imwrite(tmp_path / "movie.tif", _uneven_movie(OTHER_SCMOS, rng, frames=60).astype(np.uint16))
    tifffile.imwrite(tmp_path / "dark.tif", OTHER_SCMOS.forward(np.zeros((20, 64, 64)), rng).astype(np.uint16))
    out = tmp_path / "camera.yaml"
    args = ["camera", "--input", str(tmp_path / "movie.tif"), "--dark", str(tmp_path / "dark.tif")]
    assert main([*args, "--qe", "0.8", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ADU per electron" in printed and "(dark frames)" in printed
    block = AcquisitionSection(**yaml.safe_load(out.read_text())["acquisition"])
    assert abs(block.photons_per_adu() * adu_per_photon(OTHER_SCMOS) - 1) < 0.10


def test_rmse_vs_crlb_on_frames_simulated_with_your_camera(tmp_path, capsys):
    """Part 3 of the SMLM workflow: the other sCMOS's block (with its read noise) → simulated frames,
    localized with conversion, RMSE over z against that camera's bound, as a plot."""
    block = {"offset": OTHER_SCMOS.baseline, "e_per_adu": OTHER_SCMOS.e_per_adu, "qe": OTHER_SCMOS.qe}
    block["read_noise_e"] = OTHER_SCMOS.read_sigma
    (tmp_path / "camera.yaml").write_text(yaml.safe_dump({"acquisition": block}))
    data = yaml.safe_load((CONFIGS / "dilatedloc_gauss2d.yaml").read_text())
    data["model"]["checkpoint"] = str((CONFIGS / data["model"]["checkpoint"]).resolve())
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(data))
    args = ["crlb", "--config", str(tmp_path / "model.yaml"), "--acquisition", str(tmp_path / "camera.yaml")]
    assert main([*args, "--frames", "48"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "your_camera_rmse_vs_crlb.png").stat().st_size > 10_000
    jaccard = float(out.split("Jaccard ")[1].split(",")[0])
    ratio = float(out.split("nm (")[1].split("×")[0])
    assert jaccard > 0.85 and 1.0 <= ratio < 4.0  # above the bound, as any estimator, and not far from it


def test_the_camera_check_says_what_it_needs(tmp_path, capsys):
    assert main(["crlb", "--config", str(CONFIGS / "dilatedloc_gauss2d.yaml")]) == 2
    assert "efficientbioai camera --input movie.tif --output camera.yaml" in capsys.readouterr().err


def test_the_camera_block_carries_read_noise_from_dark_frames():
    from efficientbioai.smlm.camera_estimate import CameraEstimate

    est = CameraEstimate(400.0, 0.01, 4.0, 0.01, 6.4, 1.0, 8, 200, True)
    block = est.acquisition(None, 0.8)
    assert block["read_noise_e"] == 1.6 and AcquisitionSection(**block).camera().read_sigma == 1.6
