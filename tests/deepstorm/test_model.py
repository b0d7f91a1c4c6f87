"""The Deep-STORM networks: parameter count, shapes, in-graph normalisation and frame sum."""

import pytest
import torch

from efficientbioai.models.deepstorm import DeepSTORM, SummedShuffleHead
from tests.numerics import assert_close_to_peak, tolerance_of


def test_original_matches_deep_storm_parameter_count():
    # EliasNehme/Deep-STORM CNN_Model.py: 1,366,208 trainable parameters (convs without bias + BN γ/β)
    assert sum(p.numel() for p in DeepSTORM("original", width=32).parameters()) == 1_366_208


@pytest.mark.parametrize("variant", ["original", "unet"])
def test_output_is_the_upsampled_grid(variant):
    net = DeepSTORM(variant, width=4).eval()
    with torch.no_grad():
        assert net(torch.rand(3, 1, 16, 24)).shape == (3, 1, 128, 192)
        net.sum_frames = True
        assert net(torch.rand(3, 1, 16, 24)).shape == (1, 1, 128, 192)


def test_sum_frames_is_the_clipped_sum_of_frames():
    net = DeepSTORM("unet", width=4).eval()
    x = torch.rand(5, 1, 16, 16) * 1000
    with torch.no_grad():
        per_frame = net(x)
        net.sum_frames = True
        summed = net(x)
        net.sum_frames = False
    assert_close_to_peak(summed[0], per_frame.clamp_min(0).sum(0), tolerance_of(net, x))


def test_each_frame_is_normalised_on_its_own():
    # min-max per frame: an affine change of a frame's intensities (gain, offset) changes nothing
    net = DeepSTORM("unet", width=4).eval()
    net.norm_mean.fill_(0.2)
    net.norm_std.fill_(0.3)
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(net(x), net(37.0 * x + 100.0), atol=1e-4)


def test_stats_are_saved_in_the_state_dict():
    state = DeepSTORM("unet", width=4).state_dict()
    assert {"norm_mean", "norm_std"} <= set(state)


def test_padding_multiples_and_bad_arguments():
    assert DeepSTORM("unet", width=4).multiple == 4
    assert DeepSTORM("original", width=4).multiple == 1  # ×8 upsampling covers its three poolings
    with pytest.raises(ValueError, match="variant"):
        DeepSTORM("resnet")
    with pytest.raises(ValueError, match="power of two"):
        DeepSTORM("unet", upsample=6)


def test_deployed_per_frame_model_clips_negatives():
    net = DeepSTORM("unet", width=4, clip=True).eval()
    with torch.no_grad():
        linear = DeepSTORM("unet", width=4).eval()
        linear.load_state_dict(net.state_dict())
        x = torch.rand(2, 1, 16, 16)
        assert torch.equal(net(x), linear(x).clamp_min(0))


def test_summed_shuffle_head_is_the_transposed_conv_clipped_and_summed():
    torch.manual_seed(0)
    head = torch.nn.ConvTranspose2d(6, 1, 2, stride=2, bias=False)
    features = torch.randn(5, 6, 9, 7)
    with torch.no_grad():
        expected = torch.relu(head(features)).sum(0, keepdim=True)
        got = SummedShuffleHead(head)(features)
    assert got.shape == (1, 1, 18, 14)
    assert_close_to_peak(got, expected, tolerance_of(torch.nn.Sequential(head, torch.nn.ReLU()), features))
    with pytest.raises(ValueError, match="stride k"):
        SummedShuffleHead(torch.nn.ConvTranspose2d(6, 1, 3, stride=2, bias=False))


def test_export_graph_swaps_the_head_of_a_summed_unet_only(tmp_path):
    from efficientbioai.config import parse_config
    from efficientbioai.parsers.deepstorm import DeepSTORMParser

    def parser(**params):
        cfg = {"model": {"parser": "deepstorm", "params": {"variant": "unet", "width": 8, **params}}}
        return DeepSTORMParser(parse_config({**cfg, "simulation": {}}, str(tmp_path / "x.yaml")))

    p = parser(sum_frames=True)
    model = p.build_model().eval()
    graph = p.export_graph(model)
    assert isinstance(graph.body.head, SummedShuffleHead) and isinstance(model.body.head, torch.nn.ConvTranspose2d)
    x = torch.rand(3, 1, 16, 16) * 1000
    with torch.no_grad():
        assert_close_to_peak(graph(x), model(x), tolerance_of(model, x))
    per_frame = parser(sum_frames=False)
    assert per_frame.export_graph(m := per_frame.build_model()) is m
    original = parser(sum_frames=True, variant="original")
    assert original.export_graph(m := original.build_model()) is m
