"""MONAI UNet / BasicUNet checkpoints as MONAI's own utilities write them (``save_state``, the
``{"net": net, "opt": opt}`` dicts of ``CheckpointSaver``), and as ``nn.DataParallel`` and
``torch.compile`` name them, load through the ``monai_unet`` parser (``weights_only=True``) and
give the original network's outputs; what cannot be loaded unambiguously is refused, named."""

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("monai")

from monai.networks import nets  # noqa: E402
from monai.networks.utils import save_state  # noqa: E402

from efficientbioai.config import parse_config  # noqa: E402
from efficientbioai.errors import InputError  # noqa: E402
from efficientbioai.registry import PARSERS  # noqa: E402
from tests.numerics import assert_close_to_peak, tolerance_of  # noqa: E402

PARAMS = {
    "UNet": {"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 1, "norm": "batch"},
    "BasicUNet": {"features": [8, 8, 16, 32, 64, 8]},
}


def _net(name: str) -> torch.nn.Module:
    return getattr(nets, name)(spatial_dims=2, in_channels=1, out_channels=1, **PARAMS[name])


@pytest.fixture(scope="module", params=sorted(PARAMS))
def trained(request):
    """``(name, net, optimizer)`` after one Adam step: batch-norm statistics and optimizer state set."""
    torch.manual_seed(0)
    net = _net(request.param).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    net(torch.randn(4, 1, 32, 32)).square().mean().backward()
    opt.step()
    return request.param, net.eval(), opt


def _parser(name: str, path: Path):
    params = {"net": name, "spatial_dims": 2, "in_channels": 1, "out_channels": 1, **PARAMS[name]}
    config = parse_config(
        {"model": {"parser": "monai_unet", "checkpoint": str(path), "params": params}, "inference": {"tile": [32, 32]}}
    )
    return PARSERS.get("monai_unet")(config)


def _compiled(module: torch.nn.Module) -> torch.nn.Module:
    """``torch.compile`` wrapper (compiles lazily: nothing runs here); its keys start ``_orig_mod.``."""
    try:
        return torch.compile(module)
    except Exception as exc:  # torch.compile is not available on every platform
        pytest.skip(f"torch.compile unavailable: {exc}")


FORMATS = {
    "save_state(net)": lambda net, opt, path: save_state(net, path),
    "save_state(state_dict)": lambda net, opt, path: save_state(net.state_dict(), path),
    # monai tutorials and CheckpointSaver(save_dict={"net": net, "opt": opt})
    "net+opt": lambda net, opt, path: save_state({"net": net, "opt": opt}, path),
    # MONAI bundles' trainer: save_dict {"model": ..., "optimizer": ...}; "model" wins over an EMA copy
    "bundle+ema": lambda net, opt, path: save_state(
        {"model": net, "model_ema": _other(net), "optimizer": opt, "epoch": 3}, path
    ),
    "own key+opt": lambda net, opt, path: save_state({"unet": net, "opt": opt}, path),
    "save_state(DataParallel)": lambda net, opt, path: save_state(torch.nn.DataParallel(net), path),
    "DataParallel.state_dict": lambda net, opt, path: torch.save(torch.nn.DataParallel(net).state_dict(), path),
    "compiled": lambda net, opt, path: save_state(_compiled(net), path),
    "compiled DataParallel": lambda net, opt, path: save_state(
        _compiled(torch.nn.DataParallel(net)).state_dict(), path
    ),
}


def _other(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A state_dict of the same architecture with other weights."""
    return {k: v + 1 if v.is_floating_point() else v for k, v in net.state_dict().items()}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_saved_checkpoint_gives_the_original_outputs(tmp_path, trained, fmt):
    name, net, opt = trained
    path = tmp_path / "model.pt"
    FORMATS[fmt](net, opt, path)
    model = _parser(name, path).load_model()
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 1, 32, 32)).astype(np.float32))
    with torch.no_grad():
        got, want = model(x), net(x)
    assert_close_to_peak(got.numpy(), want.numpy(), tolerance_of(net, x))


def test_loaded_weights_only(tmp_path, trained, monkeypatch):
    name, net, opt = trained
    path = tmp_path / "model.pt"
    save_state({"net": net, "opt": opt}, path)
    calls = []
    load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or load(*a, **k))
    _parser(name, path).load_model()
    assert calls and all(k.get("weights_only") is True for k in calls)


BAD = {
    "two nets, no usual key": (
        lambda net, opt, path: save_state({"generator": net, "discriminator": _other(net)}, path),
        r"several state_dicts \('generator', 'discriminator'\).*torch\.save\(ckpt\['generator'\]",
    ),
    "two usual keys": (
        lambda net, opt, path: save_state({"model": net, "net": _other(net)}, path),
        r"several state_dicts \('model', 'net'\)",
    ),
    "optimizer only": (
        lambda net, opt, path: save_state(opt, path),
        r"no network state_dict.*keys found: param_groups, state.*torch\.save\(model\.state_dict\(\)",
    ),
    "TorchScript": (
        lambda net, opt, path: torch.jit.save(torch.jit.trace(net, torch.zeros(1, 1, 32, 32)), path),
        r"TorchScript archive.*torch\.jit\.load\(path\)\.state_dict\(\)",
    ),
    "whole module pickled": (
        lambda net, opt, path: torch.save(net, path),
        r"would run code from the file.*torch\.load\(path, weights_only=False\)\.state_dict\(\)",
    ),
    "a list": (lambda net, opt, path: torch.save([net.state_dict()], path), r"holds a list, not a state_dict"),
    "not a checkpoint": (
        lambda net, opt, path: path.write_bytes(b"not torch"),
        r"cannot be read as a weights-only PyTorch checkpoint.*torch\.save\(model\.state_dict\(\), path\)",
    ),
    "other architecture": (
        lambda net, opt, path: save_state(_net("BasicUNet" if isinstance(net, nets.UNet) else "UNet"), path),
        r"does not match the architecture.*missing.*unexpected.*Check model\.params",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_checkpoint_is_one_clear_error(tmp_path, trained, case):
    name, net, opt = trained
    write, message = BAD[case]
    path = tmp_path / "model.pt"
    write(net, opt, path)
    with pytest.raises(InputError, match=message) as info:
        _parser(name, path).load_model()
    assert "\n" not in str(info.value)
