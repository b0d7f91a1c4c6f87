"""The Python API: objects in, objects out — a plain nn.Module, a dict config, arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import efficientbioai
from efficientbioai.errors import ConfigError
from tests.numerics import assert_close_to_peak, tolerance_of
from tutorial.custom_model import TinyDenoiser

SETTINGS = {
    "inference": {"task": "denoise", "tile": [32, 32], "batch_size": 2},
    "report": {
        "compare": ["torch:fp32", "openvino:fp32"],
        "latency": {"warmup": 1, "runs": 3},
        "energy": {"enabled": False},
    },
    "engine": {"name": "openvino", "precision": "fp32"},
    "deploy": {"select": "engine"},  # the deployment these tests check (the choice: tests/test_selection.py)
}


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.gamma(2.0, 30.0, (48, 40)).astype(np.float32) + 100 for _ in range(n)]


@pytest.fixture(scope="module")
def net() -> nn.Module:
    torch.manual_seed(0)
    return TinyDenoiser(width=8, depth=3).eval()


@pytest.fixture(scope="module")
def exp(net, tmp_path_factory):
    config = {**SETTINGS, "model": {"kwargs": {"width": 8, "depth": 3}}}  # its constructor arguments
    return efficientbioai.compress(
        config, model=net, exp_path=tmp_path_factory.mktemp("api") / "exp", calibration=_images(3)
    )


def test_a_plain_module_compresses_without_a_parser(exp, net):
    assert isinstance(exp, efficientbioai.Experiment) and set(exp.variants) == {"torch:fp32", "openvino:fp32"}
    model = exp.config.model
    assert (model.parser, model.target) == ("module", "tutorial.custom_model:TinyDenoiser")
    engine = efficientbioai.load_engine(exp, "openvino:fp32")
    x = np.stack([a[None, :32, :32] / 200 for a in _images(2, seed=1)]).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert_close_to_peak(engine(x), expected, tolerance_of(net, torch.from_numpy(x)))


def test_infer_takes_arrays_and_returns_a_report(exp, tmp_path):
    report = efficientbioai.infer(exp, images=_images(2, seed=2), output_dir=tmp_path / "pred")
    assert isinstance(report, efficientbioai.Report) and report.deployed == "openvino:fp32"
    assert [r["variant"] for r in report["variants"]] == ["torch:fp32", "openvino:fp32"]
    outputs = report.outputs()
    assert len(outputs) == 2 and all(p.is_file() and p.parent == tmp_path / "pred" for p in outputs)
    assert report.row("openvino:fp32")["vs_fp32"]["pearson"] > 0.999  # fp32 engines agree with torch
    assert "openvino:fp32" in report.table() and "torch:fp32" in str(report)


def test_the_deploy_yaml_rebuilds_the_module_in_yaml_form(exp, tmp_path):
    data = yaml.safe_load(exp.deploy_yaml.read_text())
    assert data["model"]["target"] == "tutorial.custom_model:TinyDenoiser"
    torch_engine = efficientbioai.load_engine(exp.path / "deploy.yaml", "torch:fp32")  # from target + checkpoint
    assert isinstance(torch_engine, efficientbioai.TorchModule)


def test_model_target_with_kwargs_in_a_config(tmp_path, net):
    torch.save(net.state_dict(), tmp_path / "tiny.pt")
    config = {
        **SETTINGS,
        "model": {
            "target": "tutorial.custom_model:TinyDenoiser",
            "kwargs": {"width": 8, "depth": 3},
            "checkpoint": str(tmp_path / "tiny.pt"),
        },
    }
    exp = efficientbioai.compress(config, exp_path=tmp_path / "exp", calibration=_images(2))
    x = _images(1, seed=3)[0][None, None, :32, :32] / 200
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert_close_to_peak(efficientbioai.load_engine(exp)(x), expected, tolerance_of(net, torch.from_numpy(x)))


class _ScriptNet(nn.Conv2d):
    pass


def test_a_module_no_other_process_can_import_is_refused(tmp_path):
    _ScriptNet.__module__ = "__main__"  # as if defined in a notebook
    with pytest.raises(ConfigError, match="move the class into a .py module"):
        efficientbioai.compress(SETTINGS, model=_ScriptNet(1, 1, 3, padding=1), exp_path=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_bad_arguments_say_what_to_give(tmp_path):
    with pytest.raises(ConfigError, match="config must be a YAML path, a dict or a Config"):
        efficientbioai.compress(42, exp_path=tmp_path / "x")
    with pytest.raises(ConfigError, match="model must be a torch.nn.Module"):
        efficientbioai.compress(SETTINGS, model="net", exp_path=tmp_path / "x")
    with pytest.raises(ConfigError, match="missing required key 'model'"):
        efficientbioai.compress({"inference": {"tile": [32, 32]}}, exp_path=tmp_path / "x")
    with pytest.raises(ConfigError, match="give parser .* or target"):
        efficientbioai.compress({"model": {}, "inference": {"tile": [32, 32]}}, exp_path=tmp_path / "x")


def test_a_module_its_kwargs_do_not_rebuild_is_refused(net, tmp_path):
    with pytest.raises(
        ConfigError, match=r"TinyDenoiser\(\*\*\{\}\) does not rebuild .* config\['model'\]\['kwargs'\]"
    ):
        efficientbioai.compress(SETTINGS, model=net, exp_path=tmp_path / "x")  # built with width=8, depth=3
    assert not (tmp_path / "x").exists()


def test_the_familiar_names_are_importable_from_the_package():
    from efficientbioai import BaseInfer, BaseParser, OPVModule, ORTModule, TorchModule, TRTModule, compress

    assert callable(compress)  # the API function, or the script module standing for it once imported
    assert all(issubclass(e, BaseInfer) for e in (OPVModule, ORTModule, TorchModule, TRTModule))
    assert BaseParser.__module__ == "efficientbioai.parsers.base"


def test_importing_the_script_modules_never_hides_the_api(exp, tmp_path):
    import importlib

    script = importlib.import_module("efficientbioai.compress")  # python efficientbioai/compress.py, as a module
    assert callable(efficientbioai.compress) and callable(script)
    images = _images(1, seed=4)
    report = importlib.import_module("efficientbioai.inference")(exp, images=images, output_dir=tmp_path / "p")
    assert report.deployed == "openvino:fp32"
