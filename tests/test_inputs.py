"""Bad input gets a clear error naming the problem."""

import numpy as np
import pytest
import tifffile
import torch

from efficientbioai.config import parse_config
from efficientbioai.errors import ConfigError, InputError
from efficientbioai.io.images import list_images, read_image, write_tiff
from efficientbioai.parsers.checkpoint import load_state_dict
from efficientbioai.parsers.monai_unet import MonaiUNetParser
from tests.helpers import TINY


@pytest.fixture
def parser():
    return MonaiUNetParser(parse_config(TINY))


def test_read_tiff_and_npy(tmp_path):
    write_tiff(tmp_path / "a.tif", np.arange(12, dtype=np.uint16).reshape(3, 4))
    np.save(tmp_path / "b.npy", np.ones((3, 4)))
    assert read_image(tmp_path / "a.tif").dtype == np.float32
    assert [p.name for p in list_images(tmp_path)] == ["a.tif", "b.npy"]
    assert not list(tmp_path.glob(".*partial"))


def test_corrupt_tiff(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage that is not a tiff")
    with pytest.raises(InputError, match="bad.tif: holds no pixels"):
        read_image(bad)
    tifffile.imwrite(tmp_path / "ok.tif", np.ones((64, 64), np.float32))
    data = (tmp_path / "ok.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.tif: cannot read image"):
        read_image(tmp_path / "cut.tif")


def test_nan_and_inf_pixels(tmp_path):
    img = np.ones((8, 8), np.float32)
    img[2, 3] = np.nan
    img[4, 4] = np.inf
    tifffile.imwrite(tmp_path / "nan.tif", img)
    with pytest.raises(InputError, match="2 pixels are NaN or Inf"):
        read_image(tmp_path / "nan.tif")


def test_missing_and_unsupported(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_image(tmp_path / "none.tif")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(InputError, match="unsupported image type"):
        read_image(tmp_path / "x.png")
    with pytest.raises(InputError, match="no TIFF or .npy images"):
        list_images(tmp_path / "empty*")


def test_non_numeric_pixels(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((4, 4), dtype=np.complex64))
    with pytest.raises(InputError, match="not a real number type"):
        read_image(tmp_path / "c.npy")


def test_wrong_dimensions_and_channels(parser):
    assert parser.channels_first(np.zeros((32, 32))).shape == (1, 32, 32)
    assert parser.channels_first(np.zeros((1, 32, 32))).shape == (1, 32, 32)
    with pytest.raises(InputError, match="does not fit a 2D model with 1 input channel"):
        parser.channels_first(np.zeros((4, 8, 32, 32)), "vol.tif")
    with pytest.raises(InputError, match="shape \\(3, 32, 32\\)"):
        parser.channels_first(np.zeros((3, 32, 32)))


def test_missing_checkpoint(tmp_path, parser):
    with pytest.raises(InputError, match="checkpoint not found"):
        load_state_dict(parser.build_model(), tmp_path / "none.pt")


def test_checkpoint_of_other_architecture(tmp_path, parser):
    other = MonaiUNetParser(
        parse_config(
            {**TINY, "model": {**TINY["model"], "params": {**TINY["model"]["params"], "channels": [4, 8, 16]}}}
        )
    )
    torch.save(other.build_model().state_dict(), tmp_path / "other.pt")
    with pytest.raises(InputError, match="does not match the architecture.*other shape"):
        load_state_dict(parser.build_model(), tmp_path / "other.pt")


def test_pickled_object_is_refused(tmp_path, parser):
    torch.save({"model": parser.build_model()}, tmp_path / "full.pt")  # a whole module, not weights
    with pytest.raises(InputError, match="would run code from the file"):
        load_state_dict(parser.build_model(), tmp_path / "full.pt")


def test_wrapped_state_dict_loads(tmp_path, parser):
    model = parser.build_model()
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "w.pt")
    load_state_dict(parser.build_model(), tmp_path / "w.pt")


def test_bad_monai_params():
    bad = {**TINY, "model": {"parser": "monai_unet", "params": {"net": "UNet", "chanels": [8, 16]}}}
    with pytest.raises(ConfigError, match="no argument\\(s\\) \\['chanels'\\]"):
        MonaiUNetParser(parse_config(bad)).build_model()
    bad = {**TINY, "model": {"parser": "monai_unet", "params": {"net": "SwinUNETR"}}}
    with pytest.raises(ConfigError, match="not supported"):
        MonaiUNetParser(parse_config(bad)).build_model()
