"""bioimage.io, offline: export → bioimageio.core's test_model → import, and a package built with bioimageio.spec."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from efficientbioai.api.infer import run_inference
from efficientbioai.cli import main
from efficientbioai.compression.build_experiment import compress
from efficientbioai.errors import ConfigError
from efficientbioai.io.bioimageio import bioimageio_spec
from tests.helpers import write_config

pytest.importorskip("bioimageio.core")
FAST = {"latency": {"warmup": 1, "runs": 3}, "energy": {"enabled": False}}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any HTTP request fails the test: the packages must validate and run from local files alone."""
    import httpx

    def refuse(self, request, *args, **kwargs):
        raise AssertionError(f"network access attempted: {request.url}")

    monkeypatch.setattr(httpx.Client, "send", refuse)
    monkeypatch.setattr(httpx.AsyncClient, "send", refuse)


@pytest.fixture(scope="module")
def packages(tiny_experiment, tmp_path_factory):
    out = tmp_path_factory.mktemp("bioimageio")
    assert main(["export", "bioimageio", "--exp", str(tiny_experiment), "--output_dir", str(out)]) == 0
    return sorted(out.glob("*.zip"))


def test_both_packages_pass_test_model(packages):
    from bioimageio.core import test_model

    bioimageio_spec()
    assert [p.name for p in packages] == ["tiny_fp32.zip", "tiny_int8.zip"]
    for path in packages:
        summary = test_model(path, devices=["cpu"])
        failed = [(d.name, d.errors[:1]) for d in summary.details if d.status != "passed"]
        assert summary.status == "passed", failed


def test_the_int8_package_names_its_parent_and_a_measured_tolerance(packages):
    from bioimageio.spec import load_model_description

    fp32, int8 = (load_model_description(p, perform_io_checks=False) for p in packages)
    assert str(int8.parent.id) == str(fp32.id) and set(int8.weights.available_formats) == {"onnx"}
    assert {"torchscript", "onnx"} <= set(fp32.weights.available_formats) and fp32.weights.onnx.parent == "torchscript"
    (tol,) = int8.config.bioimageio.reproducibility_tolerance
    assert 0 < tol.absolute_tolerance <= 0.01 * float(int8.get_output_test_arrays()[0].max()) + 1e-12
    assert [c.doi for c in fp32.cite][:1] == ["10.1038/s41592-024-02167-z"]


def test_the_exported_package_compresses_again(packages, tmp_path):
    config = write_config(
        tmp_path,
        {"model": {"bioimageio": str(packages[0])}, "report": {"compare": ["torch:fp32", "openvino:int8"], **FAST}},
    )
    deploy = compress(config, tmp_path / "again")
    manifest = json.loads((tmp_path / "again" / "manifest.json").read_text())
    export = next(s for s in manifest["steps"] if s["step"] == "export onnx")
    assert export["test_tensors"] == 1 and export["test_off_per_million"] <= 100  # the package's test output
    report = run_inference(deploy)
    rows = {r["variant"]: r for r in report["variants"]}
    assert rows["torch:fp32"]["vs_ground_truth"]["pearson"] > 0.9999  # ground truth: the package's test output
    assert rows["openvino:int8"]["vs_fp32"]["pearson"] > 0.95


def _monai_package(folder):
    """A package assembled with bioimageio.spec's own classes around a MONAI UNet (state dict + library)."""
    from monai.networks.nets import UNet

    spec = bioimageio_spec()
    from bioimageio.spec.model import v0_5 as v

    kwargs = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "channels": [8, 16], "strides": [2]}
    torch.manual_seed(1)
    net = UNet(**kwargs).eval()
    torch.save(net.state_dict(), folder / "unet.pt")
    raw = (np.random.default_rng(2).gamma(2.0, 40.0, (1, 1, 48, 48)) + 100).astype(np.float32)
    x = (raw - raw.mean()) / (raw.std() + 1e-6)
    with torch.no_grad():
        np.save(folder / "out.npy", net(torch.from_numpy(x.astype(np.float32))).numpy())
    np.save(folder / "in.npy", raw)
    (folder / "README.md").write_text("# MONAI UNet\n\n## Validation\n\nTest tensors reproduce.\n")
    yx = [v.AxisId("y"), v.AxisId("x")]
    with spec.ValidationContext(perform_io_checks=True):
        descr = v.ModelDescr(
            name="monai unet 2d",
            description="a MONAI UNet, packaged by bioimageio.spec",
            authors=[v.Author(name="Test")],
            cite=[v.CiteEntry(text="Ronneberger et al. (2015)", doi="10.1007/978-3-319-24574-4_28")],
            license="MIT",
            documentation=v.FileDescr(source=folder / "README.md"),
            inputs=[
                v.InputTensorDescr(
                    id=v.TensorId("raw"),
                    axes=[v.BatchAxis(), v.ChannelAxis(channel_names=[v.Identifier("c0")])]
                    + [v.SpaceInputAxis(id=a, size=v.ParameterizedSize(min=16, step=8)) for a in yx],
                    test_tensor=v.FileDescr(source=folder / "in.npy"),
                    data=v.IntervalOrRatioDataDescr(type="float32"),
                    preprocessing=[v.ZeroMeanUnitVarianceDescr(kwargs=v.ZeroMeanUnitVarianceKwargs(axes=yx, eps=1e-6))],
                )
            ],
            outputs=[
                v.OutputTensorDescr(
                    id=v.TensorId("out"),
                    axes=[v.BatchAxis(), v.ChannelAxis(channel_names=[v.Identifier("c0")])]
                    + [
                        v.SpaceOutputAxis(id=a, size=v.SizeReference(tensor_id=v.TensorId("raw"), axis_id=a))
                        for a in yx
                    ],
                    test_tensor=v.FileDescr(source=folder / "out.npy"),
                    data=v.IntervalOrRatioDataDescr(type="float32"),
                )
            ],
            weights=v.WeightsDescr(
                pytorch_state_dict=v.PytorchStateDictWeightsDescr(
                    source=folder / "unet.pt",
                    architecture=v.ArchitectureFromLibraryDescr(
                        import_from="monai.networks.nets", callable=v.Identifier("UNet"), kwargs=kwargs
                    ),
                    pytorch_version=v.Version(torch.__version__.split("+")[0]),
                )
            ),
        )
    path = folder / "monai_unet.zip"
    spec.save_bioimageio_package(descr, output_path=path)
    return path


def test_a_package_built_by_bioimageio_spec_around_a_monai_unet(tmp_path):
    package = _monai_package(tmp_path)
    report = {"compare": ["torch:fp32", "onnxruntime:int8"], **FAST}
    config = write_config(tmp_path, {"model": {"bioimageio": str(package)}, "report": report})
    deploy = compress(config, tmp_path / "exp")
    assert yaml_tile(deploy) == [48, 48]  # an allowed size (16 + n × 8): the test input's, below 64
    rows = {r["variant"]: r for r in run_inference(deploy)["variants"]}
    assert rows["torch:fp32"]["vs_ground_truth"]["pearson"] > 0.9999


def yaml_tile(deploy):
    import yaml

    return yaml.safe_load(deploy.read_text())["inference"]["tile"]


def test_a_tile_the_package_does_not_allow_is_refused(tmp_path):
    package = _monai_package(tmp_path)
    config = write_config(tmp_path, {"model": {"bioimageio": str(package)}, "inference": {"tile": [60, 64]}})
    with pytest.raises(ConfigError, match=r"axis y of the package takes 16 \+ n × 8"):
        compress(config, tmp_path / "exp")
