"""The cellpose parser: real cellpose model files load safely; bad models and images are named."""

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("cellpose")

from efficientbioai.cellpose.network import build_cpnet  # noqa: E402
from efficientbioai.config import Config  # noqa: E402
from efficientbioai.errors import InputError  # noqa: E402
from efficientbioai.registry import PARSERS  # noqa: E402


def _parser(checkpoint, **params):
    cfg = Config.model_validate(
        {"model": {"parser": "cellpose", "checkpoint": checkpoint, "params": params}, "inference": {"tile": [64, 64]}}
    )
    return PARSERS.get("cellpose")(cfg)


def test_standard_width_cellpose_file_loads(tmp_path):
    """A file saved the way cellpose saves models (CPnet.save_model) loads with every key checked."""
    torch.manual_seed(0)
    net = build_cpnet(nchan=2, diam_mean=17.0)
    net.diam_labels.data.fill_(14.5)
    path = tmp_path / "my_cellpose_model"
    net.save_model(str(path))
    parser = _parser(str(path), diam_mean=17.0)
    model = parser.load_model()
    for (k, v), w in zip(net.state_dict().items(), model.net.state_dict().values()):
        assert torch.equal(v, w), k
    assert parser.rescale() == pytest.approx(17.0 / 14.5)  # diam_mean / diam_labels, as cellpose


def test_width_mismatch_is_explained(tmp_path):
    path = tmp_path / "small"
    build_cpnet(nchan=2, nbase=(8, 16, 32, 64)).save_model(str(path))
    with pytest.raises(InputError, match="does not match the architecture"):
        _parser(str(path)).load_model()


def test_builtin_names_are_refused_without_download():
    with pytest.raises(InputError, match="built-in name.*download"):
        _parser("cyto3").load_model()


def test_cellpose4_file_is_refused(tmp_path):
    path = tmp_path / "cpsam"
    torch.save({"W2": torch.zeros(3), "encoder.x": torch.zeros(1)}, path)
    with pytest.raises(InputError, match="cellpose 4"):
        _parser(str(path)).load_model()


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((4, 64, 64)), "channels first"),
        (np.zeros((2, 3, 64, 64)), "channels first"),
        (np.zeros((8, 8)), "smaller than 16"),
    ],
)
def test_bad_images(image, message):
    with pytest.raises(InputError, match=message):
        _parser(None).channels_first(image)


def test_nan_image():
    image = np.ones((32, 32), np.float32)
    image[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        _parser(None).preprocess(image)


def test_preprocess_is_cellpose_normalisation():
    from cellpose import transforms

    image = np.random.default_rng(0).gamma(2.0, 50.0, (64, 80)).astype(np.float32)
    got = _parser(None).preprocess(image)
    want = transforms.normalize_img(transforms.convert_image(image, [0, 0], nchan=2), axis=-1)
    assert got.shape == (2, 64, 80)
    np.testing.assert_allclose(got, want.transpose(2, 0, 1), atol=1e-6)


def test_example_config_is_valid():
    from efficientbioai.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "cellpose_nuclei.yaml")
    assert cfg.model.parser == "cellpose" and cfg.inference.tile == [224, 224]
