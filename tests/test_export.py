"""torch → ONNX for every supported MONAI net, 2D and 3D, verified against torch."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from efficientbioai.compression.export import export_onnx, verify_onnx
from efficientbioai.config import parse_config
from efficientbioai.errors import ExportError
from efficientbioai.parsers.monai_unet import MonaiUNetParser

NETS = {
    "UNet": {"channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1},
    "BasicUNet": {"features": [4, 4, 8, 8, 16, 4]},
    "DynUNet": {"filters": [4, 8, 16, 32]},
}


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("net", sorted(NETS))
def test_export_dynamic_axes_matches_torch(tmp_path, net, dims):
    tile = [32, 32] if dims == 2 else [16, 32, 32]
    cfg = parse_config(
        {
            "model": {"parser": "monai_unet", "params": {"net": net, "spatial_dims": dims, **NETS[net]}},
            "inference": {"tile": tile},
        }
    )
    parser = MonaiUNetParser(cfg)
    model = parser.load_model()
    path = export_onnx(model, parser.example_input(), tmp_path / "m.onnx", dynamic_axes=parser.dynamic_axes())
    other = [2] + [1] + [2 * t for t in tile]  # another batch size and tile size than exported
    err = verify_onnx(model, path, [torch.randn(1, 1, *tile), torch.randn(*other)], 1e-5)
    assert err < 1e-5
    shape = ort.InferenceSession(str(path)).get_inputs()[0].shape
    assert all(isinstance(s, str) for i, s in enumerate(shape) if i != 1)


def test_mismatch_is_reported(tmp_path):
    cfg = parse_config(
        {"model": {"parser": "monai_unet", "params": {"net": "UNet", **NETS["UNet"]}}, "inference": {"tile": [32, 32]}}
    )
    parser = MonaiUNetParser(cfg)
    model = parser.load_model()
    path = export_onnx(model, parser.example_input(), tmp_path / "m.onnx", dynamic_axes=parser.dynamic_axes())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    with pytest.raises(ExportError, match="differs from torch"):
        verify_onnx(model, path, [torch.randn(1, 1, 32, 32)], 1e-5)


def test_untraceable_model_gives_clear_error(tmp_path):
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            return x[x > 0].reshape(-1).sum().item() * x  # .item() breaks tracing to ONNX

    class Mute(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("boom inside forward")

    with pytest.raises(ExportError, match="cannot export Mute"):
        export_onnx(Mute(), torch.zeros(1, 1, 8, 8), tmp_path / "x.onnx")
    assert np.isfinite(DataDependent()(torch.ones(1, 1, 2, 2))).all()


def test_dynamo_exporter_with_dynamic_shapes(tmp_path):
    cfg = parse_config(
        {
            "model": {"parser": "monai_unet", "params": {"net": "UNet", **NETS["UNet"]}},
            "inference": {"tile": [32, 32]},
            "export": {"exporter": "dynamo", "opset": 18},
        }
    )
    parser = MonaiUNetParser(cfg)
    model = parser.load_model()
    path = export_onnx(
        model,
        parser.example_input(),
        tmp_path / "m.onnx",
        dynamic_axes=parser.dynamic_axes(),
        opset=18,
        exporter="dynamo",
    )
    assert verify_onnx(model, path, [torch.randn(3, 1, 48, 64)], 1e-5) < 1e-5
