"""Fixtures for the TensorRT tests: a tiny exported UNet, its calibration data, and the fake ``tensorrt``.

The ``fake_trt`` fixture puts the FAKE module of ``fake_tensorrt.py`` into ``sys.modules`` and
replaces the CUDA device (torch.cuda) by host memory, so the builder and ``TRTModule`` run their
real code paths on a machine with neither TensorRT nor a GPU. It is not TensorRT.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import TINY
from tests.tensorrt.fake_tensorrt import make_fake_tensorrt

#: The tiny 2D UNet of the other tests, compared on torch:fp32 and the TensorRT int8 variant.
TRT_TINY = {
    **TINY,
    "report": {**TINY["report"], "compare": ["torch:fp32", "tensorrt:int8"]},
    "engine": {"name": "tensorrt", "precision": "int8"},
}


@pytest.fixture(scope="session")
def trt_parser():
    import torch

    from efficientbioai.config import parse_config
    from efficientbioai.parsers.monai_unet import MonaiUNetParser

    torch.manual_seed(0)
    return MonaiUNetParser(parse_config(TRT_TINY))


@pytest.fixture(scope="session")
def trt_onnx(tmp_path_factory, trt_parser) -> Path:
    """The fp32 ONNX (dynamic batch and spatial axes) of a seeded, untrained tiny UNet."""
    import torch

    from efficientbioai.compression.export import export_onnx

    torch.manual_seed(0)
    model = trt_parser.build_model().eval()
    p = trt_parser
    folder = tmp_path_factory.mktemp("trt_onnx")
    return export_onnx(model, p.example_input(), folder / "model.onnx", p.input_names, p.output_names, p.dynamic_axes())


@pytest.fixture(scope="session")
def trt_calib(trt_parser) -> list[np.ndarray]:
    return list(trt_parser.calibration_inputs())


@pytest.fixture(scope="session")
def trt_qdq(tmp_path_factory, trt_parser, trt_onnx, trt_calib) -> Path:
    """The symmetric S8 QDQ ONNX the tensorrt:int8 variant builds from."""
    from efficientbioai.compression.quantize_trt import TensorRTQuantizer

    out = tmp_path_factory.mktemp("trt_qdq")
    settings = trt_parser.config.quantize.onnxruntime
    return TensorRTQuantizer(settings, trt_parser.keep_float_nodes()).apply(trt_onnx, trt_calib, out)


class HostDevice:
    """Stand-in for ``tensorrt_engine.CudaDevice``: host torch tensors, a recorded "stream"."""

    stream_handle = 0xC0FFEE

    def __init__(self, index: int, what: str = "TensorRT", calls: list | None = None) -> None:
        self.name = f"host stand-in for cuda:{index}"
        self.calls = calls if calls is not None else []

    def current(self):
        return nullcontext()

    def streaming(self):
        return nullcontext()

    def to_device(self, x, dtype: str):
        import torch

        return torch.as_tensor(np.array(x, copy=True)).to(getattr(torch, dtype)).contiguous()

    def empty(self, shape, dtype: str):
        import torch

        self.calls.append(("allocate", tuple(shape)))
        return torch.full(shape, float("nan"), dtype=getattr(torch, dtype))  # NaN: unwritten outputs show

    def to_host(self, t) -> np.ndarray:
        self.calls.append(("to_host", tuple(t.shape)))
        return t.numpy().copy()

    def synchronize(self) -> None:
        self.calls.append(("synchronize",))


@pytest.fixture
def fake_trt(monkeypatch):
    """Install the FAKE ``tensorrt`` (TensorRT 10 flavour) and a host "GPU"; yields the fake module."""
    yield install_fake(monkeypatch, make_fake_tensorrt())


def install_fake(monkeypatch, trt):
    from efficientbioai.compression import convert_tensorrt
    from efficientbioai.engines import tensorrt_engine

    monkeypatch.setitem(sys.modules, "tensorrt", trt)

    def require_cuda(device=0, what="TensorRT"):
        trt.calls.append(("require_cuda", device))

    @contextmanager
    def on_device(device, what="TensorRT"):
        trt.calls.append(("on_device", device))
        yield "host stand-in GPU"

    monkeypatch.setattr(convert_tensorrt, "require_cuda", require_cuda)
    monkeypatch.setattr(convert_tensorrt, "on_device", on_device)
    monkeypatch.setattr(
        tensorrt_engine.TRTModule, "device_factory", lambda index, what: HostDevice(index, what, trt.calls)
    )
    return trt


@pytest.fixture
def no_trt(monkeypatch):
    """Make ``import tensorrt`` fail, whatever is installed."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)
