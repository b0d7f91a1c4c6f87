import numpy as np
import pytest
import torch

from efficientbioai.smlm.postprocess import SpatialIntegration, dense_to_table


def _out(h=16, w=16):
    out = torch.zeros(1, 9, h, w)
    out[:, 5:9] = 0.1
    return out


def test_one_emitter_spread_over_two_pixels_counts_once():
    out = _out()
    out[0, 0, 5, 5], out[0, 0, 5, 6] = 0.5, 0.45  # one emitter on a pixel border
    out[0, 1, 5, 5] = 0.4  # x offset (px)
    table = dense_to_table(SpatialIntegration(100.0)(out))
    assert len(table) == 1
    frame, x, y = table[0, :3]
    assert frame == 1 and x == pytest.approx((5 + 0.5 + 0.4) * 100) and y == pytest.approx(550.0)
    assert table[0, 6] == pytest.approx(0.95)


def test_adjacent_emitters_both_survive():
    out = _out()
    out[0, 0, 8, 8], out[0, 0, 8, 9] = 0.95, 0.9  # two confident neighbours
    assert len(dense_to_table(SpatialIntegration()(out))) == 2


def test_emitter_on_a_pixel_corner_is_found_once():
    """p ≈ 0.25 on four pixels: DECODE's clip of 0.3 before the summation lost such emitters."""
    out = _out()
    out[0, 0, 6:8, 6:8] = torch.tensor([[0.26, 0.25], [0.24, 0.23]])
    assert len(dense_to_table(SpatialIntegration()(out))) == 1
    assert len(dense_to_table(SpatialIntegration(clip=0.3)(out))) == 0


def test_a_moderate_neighbour_of_a_maximum_is_not_a_second_emitter():
    out = _out()
    out[0, 0, 8, 8], out[0, 0, 8, 9] = 0.9, 0.7
    assert len(dense_to_table(SpatialIntegration()(out))) == 1
    assert len(dense_to_table(SpatialIntegration(split=0.6)(out))) == 2


def test_low_probabilities_are_dropped_and_frames_numbered():
    out = torch.cat([_out(), _out()])
    out[1, 0, 3, 3] = 0.8
    out[0, 0, 10, 10] = 0.25
    table = dense_to_table(SpatialIntegration()(out), first_frame=11)
    assert table[:, 0].tolist() == [12.0]


def test_exports_into_onnx_with_the_network(tmp_path):
    import onnxruntime as ort

    from efficientbioai.models.dilatedloc import DilatedLoc

    torch.manual_seed(0)
    loc = DilatedLoc(width=8)
    loc.norm.running_mean.fill_(100.0)  # as after training on ~100 ADU frames: heads stay unsaturated
    loc.norm.running_var.fill_(100.0)
    net = torch.nn.Sequential(loc, SpatialIntegration(100.0)).eval()
    x = torch.randn(2, 1, 32, 32) * 10 + 100
    torch.onnx.export(
        net,
        (x,),
        str(tmp_path / "m.onnx"),
        dynamo=False,
        opset_version=17,
        input_names=["input"],
        output_names=["dense"],
        dynamic_axes={"input": {0: "b", 2: "h", 3: "w"}, "dense": {0: "b", 2: "h", 3: "w"}},
    )
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        ref = net(x).numpy()
    scale = np.abs(ref).max(axis=(0, 2, 3), keepdims=True) + 1e-6  # photons are ~1e4, offsets ~1
    np.testing.assert_allclose(got / scale, ref / scale, atol=1e-4)


def test_bad_thresholds():
    with pytest.raises(ValueError):
        SpatialIntegration(threshold=0.2, clip=0.3)
