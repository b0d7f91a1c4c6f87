"""The optional NNI pruner (``prune.library: nni``). NNI pins filelock<3.12, so it lives in its
own environment: ``.ci/run`` creates one and runs this file there; in the default environment
only the checks that need no NNI run."""

import pytest
import torch

from efficientbioai.config import Config, PruneSection
from efficientbioai.errors import ConfigError
from efficientbioai.registry import PARSERS, PRUNERS


def _unet(dims: int):
    cfg = Config.model_validate(
        {
            "model": {
                "parser": "monai_unet",
                "params": {
                    "net": "UNet",
                    "spatial_dims": dims,
                    "channels": [8, 16, 32],
                    "strides": [2, 2],
                    "num_res_units": 0,
                    "norm": "batch",
                    "act": "relu",
                },
            },
            "inference": {"tile": [32] * dims},
        }
    )
    parser = PARSERS.get("monai_unet")(cfg)
    return parser, parser.build_model().eval()


def test_nni_refuses_3d_nets_clearly():
    parser, model = _unet(3)
    with pytest.raises(ConfigError, match="2D networks only"):
        PRUNERS.get("nni")(PruneSection(library="nni")).prune(model, parser.example_input(), [])


def test_nni_prunes_a_2d_unet():
    pytest.importorskip(
        "nni", reason="NNI is not in this environment (it pins filelock<3.12; .ci/run installs it apart)"
    )
    parser, model = _unet(2)
    before = sum(p.numel() for p in model.parameters())
    named = dict(model.named_modules())
    protect = [named[n] for n in parser.protected_layers(model)]
    PRUNERS.get("nni")(PruneSection(library="nni", ratio=0.5)).prune(model, parser.example_input(), protect)
    assert sum(p.numel() for p in model.parameters()) < 0.6 * before
    assert not any(m.training for m in model.modules())  # back in eval mode after ModelSpeedup
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 1, 32, 32)
