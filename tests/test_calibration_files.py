"""Calibration on the user's own data: ``--calibration DIR``, movies for SMLM, and the warning
when inference reads files but int8 is calibrated on synthetic images."""

import json

import numpy as np
import pytest
import tifffile

from efficientbioai.cli import main
from efficientbioai.compression.build_experiment import synthetic_calibration_warning
from efficientbioai.config import parse_config
from efficientbioai.parsers.base import create_parser
from tests.helpers import TINY, write_config
from tests.runtime.test_tasks import SMLM


def _images(folder, n=3, shape=(80, 72)):
    folder.mkdir()
    rng = np.random.default_rng(4)
    for i in range(n):
        tifffile.imwrite(folder / f"raw_{i}.tif", (rng.gamma(2.0, 40.0, shape) + 300).astype(np.uint16))
    return folder


def test_fewer_images_than_samples_give_several_crops_each(tmp_path):
    images = _images(tmp_path / "raw", n=3)
    cfg = parse_config({**TINY, "data": {"calibration": {"source": "files", "inputs": str(images), "num_samples": 7}}})
    crops = list(create_parser(cfg).calibration_inputs())
    assert len(crops) == 7 and all(c.shape == (1, 1, 64, 64) for c in crops)
    assert len({c.tobytes() for c in crops}) == 7  # seeded positions: no two crops alike


def test_smlm_calibrates_on_the_users_movie_frames(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(20):  # one acquisition saved as one file per frame
        tifffile.imwrite(frames / f"img_{i:04d}.tif", np.full((40, 36), 100 + i, np.uint16))
    cfg = {**SMLM, "model": {"parser": "dilatedloc", "params": {"width": 8, "frames": 3}}}
    cfg["data"] = {"calibration": {"source": "files", "inputs": str(frames), "num_samples": 5}}
    got = list(create_parser(parse_config(cfg)).calibration_inputs())
    assert len(got) == 5 and all(x.shape == (1, 3, 32, 32) for x in got)
    assert [float(x[0, 1, 0, 0]) for x in got] == [100, 105, 110, 114, 119]  # evenly spaced through the movie
    assert got[0][0, :, 0, 0].tolist() == [100, 100, 101]  # the first frame's context repeats it


def test_compress_calibration_flag_and_warning(tiny_checkpoint, tmp_path, monkeypatch):
    images = _images(tmp_path / "raw")
    data = {**TINY, "model": {**TINY["model"], "checkpoint": str(tiny_checkpoint)}}
    data["report"] = {**TINY["report"], "compare": ["torch:fp32", "onnxruntime:int8"]}
    data["inference"] = {**TINY["inference"], "input": str(images)}
    config = write_config(tmp_path, data)
    assert "--calibration DIR" in synthetic_calibration_warning(parse_config(data))
    from efficientbioai.compression import build_experiment

    warned = []  # recorded at the call: other suites reconfigure logging (handlers, levels) globally
    monkeypatch.setattr(build_experiment.log, "warning", lambda msg, *args: warned.append(msg % args if args else msg))
    assert main(["compress", "--config", str(config), "--exp_path", str(tmp_path / "synthetic")]) == 0
    assert any("calibrated on synthetic data" in w for w in warned)
    warned.clear()
    args = ["compress", "--config", str(config), "--exp_path", str(tmp_path / "own"), "--calibration", str(images)]
    assert main(args) == 0
    assert not any("calibrated on synthetic data" in w for w in warned)
    calib = json.loads((tmp_path / "own" / "manifest.json").read_text())["calibration"]
    assert calib["source"] == "files" and calib["inputs"] == str(images) and calib["warning"] is None
    warned = json.loads((tmp_path / "synthetic" / "manifest.json").read_text())["calibration"]
    assert warned["source"] == "synthetic" and "--calibration" in warned["warning"]


@pytest.mark.parametrize("spec", ["missing_folder", "empty"])
def test_calibration_folder_without_images_is_one_error_line(tiny_config, tmp_path, capsys, spec):
    (tmp_path / "empty").mkdir()
    args = ["compress", "--config", str(tiny_config), "--exp_path", str(tmp_path / "x"), "--calibration"]
    assert main([*args, str(tmp_path / spec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: no TIFF or .npy images found at {tmp_path / spec}"]  # checked before any work
    assert not (tmp_path / "x").exists()
