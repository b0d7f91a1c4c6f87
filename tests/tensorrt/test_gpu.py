"""Real TensorRT on a real NVIDIA GPU: build int8 and fp16 engines, run them, compare with fp32.

Skipped, with the reason, where the ``tensorrt`` package (10 or newer) or a CUDA device is
missing — as on the machines this project is developed on. Run it on a GPU machine with
``pytest -rs tests/tensorrt/test_gpu.py``.
"""

import sys

import numpy as np
import pytest

from efficientbioai.compression.convert_tensorrt import build_engine
from efficientbioai.engines.ort_engine import ORTModule
from efficientbioai.engines.tensorrt_support import Profile, on_device, onnx_inputs, profile_shapes
from efficientbioai.evaluation.measure import measure_latency
from efficientbioai.tasks.image_metrics import pearson


@pytest.fixture(scope="module")
def real_trt():
    if getattr(sys.modules.get("tensorrt"), "__fake__", False):
        pytest.skip("the fake tensorrt module is installed")
    try:
        import tensorrt
    except Exception as exc:
        pytest.skip(f"TensorRT is not installed ({exc}); it needs an NVIDIA GPU and NVIDIA's package index")
    if int(tensorrt.__version__.split(".")[0]) < 10:
        pytest.skip(f"TensorRT {tensorrt.__version__} is older than 10")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU (torch.cuda.is_available() is False)")
    return tensorrt


@pytest.fixture(scope="module")
def batch(trt_parser):
    sample = next(trt_parser.evaluation_samples())
    return np.stack([trt_parser.preprocess(sample.image)[:, :64, :64]] * 2).astype(np.float32)


@pytest.mark.parametrize("precision, min_pearson", [("int8", 0.99), ("fp16", 0.999)])
def test_real_engine_matches_fp32_with_dynamic_shapes(
    real_trt, precision, min_pearson, trt_onnx, trt_qdq, trt_parser, batch, tmp_path
):
    from efficientbioai.engines.tensorrt_engine import TRTModule

    shapes = profile_shapes(onnx_inputs(trt_onnx), Profile(1, 2, 4, (64, 64), (64, 64), (128, 128)))
    source = trt_qdq if precision == "int8" else trt_onnx
    settings = trt_parser.config.engine.tensorrt
    with on_device(settings.device) as name:
        path = build_engine(source, tmp_path / f"{precision}.engine", precision, settings, shapes, tmp_path / "t", name)
    assert (tmp_path / "t").stat().st_size > 0
    engine = TRTModule(path, precision)
    ref = ORTModule(trt_onnx)(batch)
    out = engine(batch)
    assert out.shape == ref.shape and pearson(out, ref) > min_pearson
    one = engine(batch[:1])  # dynamic batch
    assert np.allclose(one, out[:1], atol=1e-2 * np.abs(out).max())
    big = np.tile(batch, (2, 1, 2, 2))  # batch 4, 128 x 128 tile: the profile's maximum
    assert engine(big).shape == (4, ref.shape[1], 128, 128)
    (device_out,) = engine.run_device(batch)
    engine.sync()
    assert device_out.is_cuda and np.allclose(device_out.float().cpu().numpy(), out)
    assert measure_latency(engine, batch, warmup=2, runs=5).median_ms > 0


def test_onnxruntime_cuda_provider(trt_onnx, batch):
    """The ORT GPU route needs onnxruntime-gpu and a GPU, not the tensorrt package."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu on a GPU machine)")
    m = ORTModule(trt_onnx, providers=["CUDAExecutionProvider"], provider_options=[{"use_tf32": "0"}])
    assert m.providers[0] == "CUDAExecutionProvider"
    assert pearson(m(batch), ORTModule(trt_onnx)(batch)) > 0.9999
