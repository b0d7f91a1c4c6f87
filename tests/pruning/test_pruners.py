"""Channel pruning works on every built-in network, 2D and 3D, and the result is really smaller."""

import copy

import pytest
import torch

from efficientbioai.compression.prune import protected_modules
from efficientbioai.compression.tp_compat import fold_affine_norms, unfold_affine_norms
from efficientbioai.config import Config, PruneSection
from efficientbioai.errors import ConfigError, InputError
from efficientbioai.parsers.pruned_checkpoint import load_pruned, save_pruned
from efficientbioai.registry import PARSERS, PRUNERS

MONAI = {
    "UNet": {"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 1},
    "BasicUNet": {"features": [8, 8, 16, 16, 32, 8]},
    "DynUNet": {"kernel_size": [3, 3, 3], "strides": [1, 2, 2], "upsample_kernel_size": [2, 2], "filters": [8, 16, 32]},
}


def _parser(name: str, params: dict, tile: list[int]):
    cfg = Config.model_validate({"model": {"parser": name, "params": params}, "inference": {"tile": tile}})
    return PARSERS.get(name)(cfg)


def _prune(parser, importance="l1", ratio=0.5):
    model = parser.build_model().eval()
    example = parser.example_input()
    with torch.no_grad():
        before = model(example)
    pruned = copy.deepcopy(model)
    protect, _ = protected_modules(pruned, parser.protected_layers(pruned))
    PRUNERS.get("torch_pruning")(PruneSection(enabled=True, importance=importance, ratio=ratio)).prune(
        pruned, example, protect
    )
    return model, pruned, example, before


def _params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("net", sorted(MONAI))
def test_monai_nets_prune(net, dims):
    """BasicUNet and DynUNet fail in torch-pruning 1.6.1 alone (VainF/Torch-Pruning#387)."""
    parser = _parser("monai_unet", {"net": net, "spatial_dims": dims, **MONAI[net]}, [32] * dims)
    model, pruned, example, before = _prune(parser)
    assert _params(pruned) < 0.4 * _params(model)
    batch = torch.randn(2, *example.shape[1:])
    with torch.no_grad():
        assert pruned(batch).shape == model(batch).shape


@pytest.mark.parametrize("importance", ["l2", "fpgm"])
def test_other_importances(importance):
    parser = _parser("monai_unet", {"net": "BasicUNet", "spatial_dims": 2, **MONAI["BasicUNet"]}, [32, 32])
    model, pruned, _, _ = _prune(parser, importance=importance, ratio=0.25)
    assert _params(pruned) < 0.7 * _params(model)


def test_dilatedloc_dense_blocks_prune_heads_kept():
    parser = _parser("dilatedloc", {"width": 16}, [32, 32])
    model, pruned, example, before = _prune(parser)
    assert _params(pruned) < 0.7 * _params(model)
    for name in ("head_p", "head_xyzi", "head_sigma"):
        a, b = dict(model.named_modules())[name], dict(pruned.named_modules())[name]
        assert [p.shape[0] for p in a.parameters()][-1] == [p.shape[0] for p in b.parameters()][-1]
    with torch.no_grad():
        assert pruned(example).shape == before.shape == (1, 9, 32, 32)


def test_cellpose_cpnet_prunes():
    pytest.importorskip("cellpose")
    parser = _parser("cellpose", {"nbase": [16, 32, 64, 128]}, [64, 64])
    model, pruned, example, before = _prune(parser)
    assert _params(pruned) < 0.4 * _params(model)
    with torch.no_grad():
        out = pruned(torch.randn(2, 2, 96, 64))  # the style branch still works at other sizes
    assert out.shape == (2, 3, 96, 64)


def test_pruned_checkpoint_round_trip(tmp_path):
    parser = _parser("monai_unet", {"net": "DynUNet", "spatial_dims": 2, **MONAI["DynUNet"]}, [32, 32])
    _, pruned, example, _ = _prune(parser)
    path = save_pruned(pruned, tmp_path / "pruned.pt")
    loaded = load_pruned(parser.build_model(), path)
    with torch.no_grad():
        assert torch.allclose(loaded(example), pruned(example), atol=1e-6)
    assert _params(loaded) == _params(pruned)
    with pytest.raises(InputError, match="not a pruned checkpoint"):
        torch.save({"a": torch.zeros(1)}, tmp_path / "plain.pt")
        load_pruned(parser.build_model(), tmp_path / "plain.pt")


def test_affine_norm_unfold_is_exact():
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3), torch.nn.InstanceNorm3d(4, affine=True))
    torch.nn.init.normal_(net[1].weight)
    torch.nn.init.normal_(net[1].bias)
    x = torch.randn(2, 1, 8, 8, 8)
    want = net(x)
    assert unfold_affine_norms(net) == 1
    assert torch.allclose(net(x), want, atol=1e-5)
    assert fold_affine_norms(net) == 1 and isinstance(net[1], torch.nn.InstanceNorm3d)
    assert torch.allclose(net(x), want, atol=1e-5)


def test_bad_protect_pattern_and_taylor_without_data():
    parser = _parser("dilatedloc", {"width": 16}, [32, 32])
    model = parser.build_model()
    with pytest.raises(ConfigError, match="matches no module"):
        protected_modules(model, ["no_such_layer*"])
    with pytest.raises(ConfigError, match="taylor"):
        PRUNERS.get("torch_pruning")(PruneSection(importance="taylor")).prune(model, parser.example_input(), [])


def test_taylor_uses_training_pairs():
    parser = _parser("monai_unet", {"net": "UNet", "spatial_dims": 2, **MONAI["UNet"]}, [32, 32])
    model = parser.build_model()
    pruned = copy.deepcopy(model)
    protect, _ = protected_modules(pruned, parser.protected_layers(pruned))
    PRUNERS.get("torch_pruning")(PruneSection(importance="taylor", ratio=0.5)).prune(
        pruned, parser.example_input(), protect, parser.taylor_loss_fn()
    )
    assert _params(pruned) < 0.4 * _params(model)


def test_dilatedloc_taylor_importance_from_simulated_frames():
    """DilatedLoc has no training files, so its Taylor loss comes from simulated training tiles;
    the channels Taylor keeps are not L1's (a different criterion, not the same one renamed)."""
    cfg = Config.model_validate(
        {
            "model": {"parser": "dilatedloc", "params": {"width": 16}},
            "simulation": {"frame_shape": [32, 32]},
            "inference": {"tile": [32, 32]},
        }
    )
    parser = PARSERS.get("dilatedloc")(cfg)
    model, loss = parser.build_model().eval(), parser.taylor_loss_fn()
    assert torch.isfinite(loss(model))
    kept = {}
    for importance in ("l1", "taylor"):
        pruned = copy.deepcopy(model)
        protect, _ = protected_modules(pruned, parser.protected_layers(pruned))
        PRUNERS.get("torch_pruning")(PruneSection(importance=importance, ratio=0.5)).prune(
            pruned, parser.example_input(), protect, loss
        )
        kept[importance] = pruned.state_dict()
    assert _params(pruned) < 0.6 * _params(model)
    assert kept["l1"].keys() == kept["taylor"].keys()
    assert any(not torch.equal(kept["l1"][k], kept["taylor"][k]) for k in kept["l1"] if k.endswith("weight"))


@pytest.mark.parametrize("variant", ["original", "unet"])
def test_deepstorm_prunes(variant):
    parser = _parser("deepstorm", {"variant": variant, "width": 16}, [16, 16])
    model, pruned, example, before = _prune(parser)
    assert _params(pruned) < 0.5 * _params(model)
    with torch.no_grad():
        assert pruned(example).shape == before.shape


def test_flops_reduction_picks_the_smallest_ratio_that_reaches_it():
    """DilatedLoc at 48 channels kept in multiples of 16: channel ratios 0.35-0.5 all give the
    same network, so a FLOPs target, not a ratio, says what the user wants."""
    from efficientbioai.compression.prune import prune_to_flops
    from efficientbioai.manifest import flop_count

    parser = _parser("dilatedloc", {"width": 32, "frames": 1}, [32, 32])
    model, example = parser.build_model().eval(), parser.example_input()
    patterns = parser.protected_layers(model)

    def reduction(ratio: float) -> float:
        pruned = copy.deepcopy(model)
        protect, _ = protected_modules(pruned, patterns)
        pruner = PRUNERS.get("torch_pruning")(PruneSection(enabled=True, ratio=ratio, round_to=8))
        pruner.prune(pruned, example, protect)
        return flop_count(model, example) / flop_count(pruned, example)

    settings = PruneSection(enabled=True, flops_reduction=1.8, round_to=8)
    ratio = prune_to_flops(model, parser, settings, example, patterns)[0].ratio
    assert reduction(ratio) >= 1.8 > reduction(round(ratio - 0.05, 2))
    with pytest.raises(ConfigError, match="flops_reduction 50 is out of reach"):
        prune_to_flops(model, parser, settings.model_copy(update={"flops_reduction": 50.0}), example, patterns)
    from efficientbioai.compression.prune import prune_and_fine_tune

    settings = settings.model_copy(update={"fine_tune": settings.fine_tune.model_copy(update={"mode": "none"})})
    _, info = prune_and_fine_tune(model, parser, settings, example)
    assert info["ratio"] == ratio and info["before"]["flops_per_tile"] >= 1.8 * info["after"]["flops_per_tile"]
