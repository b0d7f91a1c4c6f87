"""CPnet without a fork: our wrapper equals cellpose's forward and exports with any tile size."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

pytest.importorskip("cellpose")

from efficientbioai.cellpose.network import STANDARD_NBASE, ExportableCPnet, build_cpnet  # noqa: E402


def _random_bn(net: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial batch-norm statistics, so eval-mode outputs are not all alike."""
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return net.eval()


@pytest.mark.parametrize("shape", [(224, 224), (160, 96)])
def test_wrapper_matches_cellpose_forward_standard_width(shape):
    torch.manual_seed(0)
    net = _random_bn(build_cpnet(nchan=2, nbase=STANDARD_NBASE))
    assert sum(p.numel() for p in net.parameters()) > 6_000_000  # cellpose 3's standard CPnet
    x = torch.randn(2, 2, *shape)
    with torch.no_grad():
        want = net(x)[0]
        got = ExportableCPnet(net).eval()(x)
    assert got.shape == want.shape == (2, 3, *shape)
    assert torch.max(torch.abs(got - want)).item() < 1e-5


def test_export_runs_at_other_tile_sizes(tmp_path):
    """Cellpose's avg_pool(kernel_size=x.shape) would freeze the traced size; ours does not."""
    torch.manual_seed(1)
    net = _random_bn(build_cpnet(nchan=2, nbase=(8, 16, 32, 64)))
    model = ExportableCPnet(net).eval()
    path = tmp_path / "cpnet.onnx"
    axes = {"input": {0: "batch", 2: "h", 3: "w"}, "output": {0: "batch", 2: "h", 3: "w"}}
    torch.onnx.export(
        model,
        torch.zeros(1, 2, 224, 224),
        path,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes=axes,
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(224, 224), (128, 256)]:
        x = np.random.default_rng(0).normal(size=(3, 2, *shape)).astype(np.float32)
        with torch.no_grad():
            want = net(torch.from_numpy(x))[0].numpy()
        got = session.run(None, {"input": x})[0]
        assert np.max(np.abs(got - want)) < 1e-4, shape
