"""Transposed convolutions exported as sub-pixel convolutions: exact, foldable, int8-friendly."""

import copy

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from efficientbioai.compression.export import export_onnx, verify_onnx
from efficientbioai.compression.subpixel import SubPixelConvTranspose, fold_batchnorms, to_subpixel

_DECONV = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
# (kernel, stride, padding, output_padding): MONAI's up-sampling, k == s, overlapping, odd, stride 1 and 3.
LAYOUTS = [(3, 2, 1, 1), (2, 2, 0, 0), (4, 2, 1, 0), (3, 2, 1, 0), (3, 1, 1, 0), (5, 3, 2, 1), (1, 2, 0, 1)]


def _peak_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max())


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_subpixel_equals_the_transposed_convolution(dims, layout):
    k, s, p, op = layout
    torch.manual_seed(dims)
    deconv = _DECONV[dims](5, 3, k, stride=s, padding=p, output_padding=op).double()
    for n in (4, 7):  # even and odd input sizes
        x = torch.randn(2, 5, *([n] * dims), dtype=torch.double)
        ref, got = deconv(x), SubPixelConvTranspose(deconv)(x)
        assert got.shape == ref.shape
        # The same ≤ 5·k^d products per output, summed in another order: float64 rounding, ~1e-15.
        assert _peak_error(ref, got) < 1e-12


def test_anisotropic_strides_and_kernels():
    deconv = nn.ConvTranspose2d(4, 3, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 1)).double()
    x = torch.randn(1, 4, 5, 6, dtype=torch.double)
    assert _peak_error(deconv(x), SubPixelConvTranspose(deconv)(x)) < 1e-12


def test_groups_and_dilation_are_refused():
    with pytest.raises(ValueError, match="groups or dilation"):
        SubPixelConvTranspose(nn.ConvTranspose2d(4, 4, 3, stride=2, groups=2))
    assert to_subpixel(nn.Sequential(nn.ConvTranspose2d(4, 4, 3, stride=2, dilation=2))) == 0


def _unet(dims: int) -> nn.Module:
    from monai.networks.nets import UNet

    net = UNet(dims, 1, 1, (4, 8, 16), (2, 2), num_res_units=1, norm="batch").double().eval()
    torch.manual_seed(0)
    for m in net.modules():  # running statistics far from (0, 1), so that folding them matters
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.2, 4)
            m.weight.data.uniform_(0.5, 2)
    return net


@pytest.mark.parametrize("dims", [2, 3])
def test_a_unet_keeps_its_output_with_batch_norms_folded(dims):
    net = _unet(dims)
    converted = copy.deepcopy(net)
    assert fold_batchnorms(copy.deepcopy(net)) == 2  # the two up-sampling convolutions are followed by BN
    assert to_subpixel(converted) == 2
    assert not any(isinstance(m, nn.modules.conv._ConvTransposeNd) and m.kernel_size != m.stride
                   for m in converted.modules())  # fmt: skip
    x = torch.randn(2, 1, *([16] * dims), dtype=torch.double)
    with torch.no_grad():
        assert _peak_error(net(x), converted(x)) < 1e-12


def test_an_untraceable_model_is_converted_without_folding():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.up, self.bn = nn.ConvTranspose2d(2, 2, 3, 2, 1, 1), nn.BatchNorm2d(2).eval()

        def forward(self, x):
            return self.bn(self.up(x)) if x.sum() > 0 else x  # data-dependent: torch.fx cannot trace it

    net = Branchy().eval()
    x = torch.rand(1, 2, 5, 5)
    ref = net(x)
    assert to_subpixel(net) == 1 and isinstance(net.bn, nn.BatchNorm2d)
    assert _peak_error(ref, net(x)) < 1e-5  # float32, ~18 terms per output


@pytest.mark.parametrize("dims", [2, 3])
def test_the_exported_graph_has_no_overlapping_transposed_convolution(tmp_path, dims):
    net = _unet(dims).float()
    graph = copy.deepcopy(net)
    to_subpixel(graph)
    tile = [16] * dims
    axes = {"input": {0: "b", **{2 + i: f"s{i}" for i in range(dims)}}}
    path = export_onnx(graph, torch.randn(1, 1, *tile), tmp_path / "m.onnx", dynamic_axes=axes)
    for node in onnx.load(str(path)).graph.node:
        if node.op_type == "ConvTranspose":
            attrs = {a.name: list(a.ints) for a in node.attribute}
            assert attrs["kernel_shape"] == attrs["strides"]  # only the one-hot shuffle of the 3D net
    # ONNX Runtime on the converted graph against the *original* model, on another batch and tile size.
    verify_onnx(net, path, [torch.randn(1, 1, *tile), torch.randn(2, 1, *[24] * dims)])


def test_openvino_int8_keeps_accuracy_through_the_3d_shuffle(tmp_path):
    """A per-channel-scaled 3D sub-pixel convolution, dynamic spatial axes, NNCF int8 in OpenVINO.

    Shuffling with a rank-8 Reshape/Transpose, OpenVINO's int8 pipeline gave a correlation of 0.90
    with its own fp32 output here; the one-hot transposed convolution gives 0.9998.
    """
    import nncf
    import openvino as ov

    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv3d(1, 16, 3, padding=1)
            self.up = SubPixelConvTranspose(nn.ConvTranspose3d(16, 8, 3, 2, 1, 1))
            self.b = nn.Conv3d(8, 4, 3, padding=1)
            with torch.no_grad():  # per-channel weight scales spanning two decades
                self.up.conv.weight.mul_(torch.logspace(-1, 1, 64).view(-1, 1, 1, 1, 1))

        def forward(self, x):
            return self.b(torch.relu(self.up(torch.relu(self.a(x)))))

    axes = {"input": {0: "b", 2: "d", 3: "h", 4: "w"}}
    path = export_onnx(Net().eval(), torch.rand(1, 1, 8, 8, 8), tmp_path / "m.onnx", dynamic_axes=axes)
    model = ov.Core().read_model(str(path))
    rng = np.random.default_rng(0)
    calibration = [rng.random((1, 1, 8, 8, 8), dtype=np.float32) for _ in range(8)]
    quantized = nncf.quantize(model, nncf.Dataset(calibration), subset_size=8)
    x = rng.random((1, 1, 8, 8, 8), dtype=np.float32)
    core = ov.Core()
    run = {p: core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})({0: x})[0]
           for p, m in (("fp32", model), ("int8", quantized))}  # fmt: skip
    # 8-bit activations and weights: a few tenths of a percent of noise, correlation ≥ 0.999.
    assert np.corrcoef(run["fp32"].ravel(), run["int8"].ravel())[0, 1] > 0.995
