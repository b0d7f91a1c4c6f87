"""``TRTModule`` driven against a FAKE ``tensorrt`` module and a host stand-in for the GPU.

The fake (tests/tensorrt/fake_tensorrt.py) is not TensorRT: its "engine" computes ``2 * x`` by
reading the bound input address and writing the bound output address, so these tests check the
named-tensor plumbing (``set_input_shape``, per-shape output allocation, ``set_tensor_address``,
``execute_async_v3`` on our stream, synchronisation before results are read) and the error
paths, not TensorRT's numerics. Those are checked by test_gpu.py on a machine with a GPU.
"""

import json

import numpy as np
import pytest

from efficientbioai.compression.convert_tensorrt import build_engine
from efficientbioai.config import parse_config
from efficientbioai.engines.tensorrt_engine import TRTModule
from efficientbioai.errors import ArtefactError, BackendUnavailableError, InputError
from efficientbioai.evaluation.measure import measure_latency
from tests.tensorrt.conftest import TRT_TINY

SHAPES = {"input": ((1, 1, 32, 32), (2, 1, 64, 64), (4, 1, 128, 128))}


@pytest.fixture
def engine_path(fake_trt, trt_qdq, tmp_path):
    settings = parse_config(TRT_TINY).engine.tensorrt
    return build_engine(trt_qdq, tmp_path / "model_int8.engine", "int8", settings, SHAPES, None, "GPU X")


def test_runs_dynamic_batch_and_tile_through_the_named_tensor_api(fake_trt, engine_path):
    m = TRTModule(engine_path, "int8", device=0)
    assert m.input_name == "input" and m.output_names == ["output"] and m.input_rank == 4
    assert m.profile == SHAPES["input"]
    rng = np.random.default_rng(0)
    for shape in [(2, 1, 64, 64), (1, 1, 32, 48), (4, 1, 128, 96), (2, 1, 64, 64)]:
        fake_trt.calls.clear()
        x = rng.random(shape, dtype=np.float32)
        y = m(x)
        np.testing.assert_array_equal(y, 2 * x)  # the output buffer bound is the one returned
        names = [c[0] for c in fake_trt.calls]
        assert ("set_input_shape", "input", shape) in fake_trt.calls
        assert ("allocate", shape) in fake_trt.calls  # output allocated at this call's shape
        assert ("set_tensor_address", "input") in fake_trt.calls
        assert ("set_tensor_address", "output") in fake_trt.calls
        assert ("execute_async_v3", 0xC0FFEE) in fake_trt.calls  # on our stream, not the default one
        # the stream is synchronised after execution and before the outputs are read back
        assert names.index("set_input_shape") < names.index("execute_async_v3")
        assert names.index("execute_async_v3") < names.index("synchronize") < names.index("to_host")


def test_sync_and_latency_measurement(fake_trt, engine_path):
    m = TRTModule(engine_path, "int8")
    x = np.ones((2, 1, 64, 64), np.float32)
    fake_trt.calls.clear()
    lat = measure_latency(m, x, warmup=1, runs=3)
    assert lat.runs == 3 and lat.batch_size == 2
    assert [c[0] for c in fake_trt.calls].count("synchronize") >= 3 + 1 + 2  # each call, and around timing


def test_run_device_returns_device_tensors_and_leaves_sync_to_the_caller(fake_trt, engine_path):
    m = TRTModule(engine_path, "int8")
    fake_trt.calls.clear()
    (out,) = m.run_device(np.ones((1, 1, 32, 32), np.float32))
    assert tuple(out.shape) == (1, 1, 32, 32) and "synchronize" not in [c[0] for c in fake_trt.calls]
    m.sync()
    assert fake_trt.calls[-1] == ("synchronize",) and float(out.mean()) == 2.0


def test_shapes_outside_the_profile_are_input_errors(fake_trt, engine_path):
    m = TRTModule(engine_path, "int8")
    for shape in [(8, 1, 64, 64), (1, 1, 256, 64), (1, 1, 16, 16)]:
        with pytest.raises(InputError, match="outside the engine's profile"):
            m(np.zeros(shape, np.float32))
    with pytest.raises(InputError, match="the model takes 4"):
        m(np.zeros((1, 32, 32), np.float32))


def test_describe_reports_device_profile_and_build(fake_trt, engine_path):
    d = TRTModule(engine_path, "int8").describe()
    assert d["engine"] == "tensorrt" and d["precision"] == "int8"
    assert d["device"].startswith("host stand-in") and d["profile"]["max"] == [4, 1, 128, 128]
    assert d["build"]["tensorrt"] == "10.8.0" and d["build"]["float_layers"] == "fp16"


def test_engine_from_another_tensorrt_version_says_rebuild(fake_trt, engine_path):
    info = engine_path.with_suffix(".json")
    info.write_text(json.dumps({**json.loads(info.read_text()), "tensorrt": "10.3.0"}))
    with pytest.raises(ArtefactError, match="built with TensorRT 10.3.0 but this is TensorRT 10.8.0"):
        TRTModule(engine_path, "int8")


def test_engine_that_does_not_deserialize_says_rebuild(fake_trt, tmp_path):
    bad = tmp_path / "model_int8.engine"
    bad.write_bytes(b"plan from another GPU")
    with pytest.raises(ArtefactError, match="cannot load this engine.*run compress.py again"):
        TRTModule(bad, "int8")
    with pytest.raises(ArtefactError, match="not found"):
        TRTModule(tmp_path / "missing.engine", "int8")


def test_created_through_the_registry_and_factory(fake_trt, engine_path, trt_parser):
    from efficientbioai.engines.factory import create_engine
    from efficientbioai.registry import ENGINES

    assert ENGINES.get("tensorrt") is TRTModule
    config = parse_config({**TRT_TINY, "artefacts": {"tensorrt:int8": str(engine_path)}})
    engine = create_engine("tensorrt:int8", config, trt_parser)
    assert isinstance(engine, TRTModule) and engine.device_index == 0


def test_without_tensorrt_the_engine_says_what_is_missing(no_trt, tmp_path):
    with pytest.raises(BackendUnavailableError) as err:
        TRTModule(tmp_path / "model_int8.engine", "int8")
    msg = str(err.value)
    assert "tensorrt:int8 needs NVIDIA TensorRT 10" in msg and "'tensorrt' cannot be imported" in msg
    assert "openvino:int8 or onnxruntime:int8" in msg and "CUDAExecutionProvider" in msg


def test_tensorrt_older_than_10_is_refused(monkeypatch, tmp_path):
    from tests.tensorrt.conftest import install_fake
    from tests.tensorrt.fake_tensorrt import make_fake_tensorrt

    install_fake(monkeypatch, make_fake_tensorrt("8.6.1"))
    with pytest.raises(BackendUnavailableError, match="needs TensorRT 10 or newer.*found 8.6.1"):
        TRTModule(tmp_path / "model_int8.engine", "int8")


def test_without_a_gpu_the_real_device_says_so(monkeypatch, tmp_path):
    """tensorrt importable (the fake) but torch has no CUDA device: the real CudaDevice must refuse."""
    import sys

    import torch

    from tests.tensorrt.fake_tensorrt import make_fake_tensorrt

    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    engine = tmp_path / "model_int8.engine"
    engine.write_bytes(b"x")
    with pytest.raises(BackendUnavailableError, match="needs an NVIDIA GPU, but torch sees no CUDA device"):
        TRTModule(engine, "int8")
