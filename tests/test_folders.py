"""What one input is (``efficientbioai.io.inputs``): image folders run image by image, movie
folders of 2D frames stay one movie, and a shape error says which reading was assumed."""

import numpy as np
import pytest
import tifffile
import yaml

from efficientbioai.cli import main
from efficientbioai.errors import InputError
from efficientbioai.io.inputs import MOVIE_READING, movie_inputs

SIZES = [(64, 64), (96, 80), (48, 72), (64, 64), (70, 50)]


def _images(folder):
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i, shape in enumerate(SIZES):
        tifffile.imwrite(folder / f"cell_{i:02d}.tif", rng.gamma(2.0, 50.0, shape).astype(np.float32))
    return folder


def test_stream_runs_a_folder_of_independent_images_one_by_one(tiny_experiment, tmp_path, capsys):
    """The issue's case: ``stream --input folder/`` on a 2D model used to read the folder as one
    (N, H, W) stack and fail; now each image, whatever its size, gets its own output."""
    folder = _images(tmp_path / "images")
    out = tmp_path / "out"
    deploy = tiny_experiment / "deploy.yaml"
    assert main(["stream", "--config", str(deploy), "--input", str(folder), "--output_dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count(".tif:") == len(SIZES)
    for i, shape in enumerate(SIZES):
        assert tifffile.imread(out / f"cell_{i:02d}.tif").shape == shape
    # the same images through infer (inference.input: folder) give the same outputs
    data = yaml.safe_load(deploy.read_text())
    data["inference"].update(input=str(folder), output_dir=str(tmp_path / "infer"))
    data["report"]["compare"] = ["torch:fp32", "openvino:int8"]
    staged = tiny_experiment / "deploy_folder.yaml"
    staged.write_text(yaml.safe_dump(data))
    assert main(["infer", "--config", str(staged)]) == 0
    for i in range(len(SIZES)):
        a, b = tifffile.imread(out / f"cell_{i:02d}.tif"), tifffile.imread(tmp_path / "infer" / f"cell_{i:02d}.tif")
        np.testing.assert_allclose(a, b, atol=1e-4 * np.abs(b).max())  # one engine, one tiling: only rounding


def test_a_stack_file_for_a_2d_model_names_the_reading(tiny_experiment, tmp_path, capsys):
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.ones((10, 64, 64), np.float32))
    assert main(["stream", "--config", str(tiny_experiment / "deploy.yaml"), "--input", str(stack)]) == 2
    err = capsys.readouterr().err
    assert "does not fit a 2D model" in err and "read as one image: each file is one image" in err


def test_movie_folders(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(4):
        tifffile.imwrite(frames / f"img_{i:04d}.tif", np.zeros((16, 16), np.uint16))
    assert movie_inputs(frames) == [frames]  # single frames of one acquisition: one movie
    movies = tmp_path / "movies"
    movies.mkdir()
    for name in ("a", "b"):
        tifffile.imwrite(movies / f"{name}.tif", np.zeros((5, 16, 16), np.uint16))
    assert movie_inputs(movies) == [movies / "a.tif", movies / "b.tif"]  # a set of movies
    assert movie_inputs(movies / "*.tif") == [movies / "a.tif", movies / "b.tif"]
    with pytest.raises(InputError, match="no TIFF"):
        movie_inputs(tmp_path / "nothing")
    assert "folder of 2D frames, one per file, is one movie" in MOVIE_READING
