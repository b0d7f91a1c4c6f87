"""The ONNX Runtime GPU route: engine.providers, its TensorRT-provider options, and the active-provider check."""

import pytest

from efficientbioai.config import parse_config
from efficientbioai.engines.ort_engine import ORTModule
from efficientbioai.engines.ort_providers import check_providers, session_providers, tensorrt_provider_options
from efficientbioai.errors import BackendUnavailableError, ConfigError
from tests.helpers import TINY


def _config(**engine):
    return parse_config({**TINY, "engine": {"name": "onnxruntime", "precision": "int8", **engine}})


def test_a_gpu_provider_missing_from_this_onnxruntime_is_an_error_not_a_silent_cpu_run(trt_onnx):
    """Runs here: this onnxruntime is the CPU build, so CUDA cannot become active."""
    with pytest.raises(BackendUnavailableError) as err:
        ORTModule(trt_onnx, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    msg = str(err.value)
    assert "session runs on ['CPUExecutionProvider']" in msg and "install onnxruntime-gpu" in msg
    assert "silently" in msg and "openvino" in msg


def test_cpu_only_providers_are_not_checked(trt_onnx):
    assert ORTModule(trt_onnx).providers == ["CPUExecutionProvider"]


def test_check_providers_cases(tmp_path):
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    check_providers(["CUDAExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"], available, tmp_path)
    with pytest.raises(BackendUnavailableError, match="TensorrtExecutionProvider is built in but did not load"):
        # TensorRT libraries missing: ORT quietly continues on CUDA
        check_providers(
            ["TensorrtExecutionProvider", "CUDAExecutionProvider"],
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            available,
            tmp_path,
        )


def test_session_providers_from_the_config(trt_qdq):
    cfg = _config(
        providers=["TensorrtExecutionProvider", "CUDAExecutionProvider"],
        tensorrt={"device": 1, "workspace_mb": 512, "max_batch": 8},
    )
    kw = session_providers(cfg, "onnxruntime:int8", trt_qdq)
    assert kw["providers"] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    trt, cuda = kw["provider_options"]
    assert cuda == {"device_id": "1", "use_tf32": "0"}
    assert trt["device_id"] == "1" and trt["trt_max_workspace_size"] == str(512 << 20)
    assert trt["trt_int8_enable"] == "True" and trt["trt_fp16_enable"] == "True"
    assert trt["trt_profile_min_shapes"] == "input:1x1x64x64"
    assert trt["trt_profile_opt_shapes"] == "input:2x1x64x64"
    assert trt["trt_profile_max_shapes"] == "input:8x1x64x64"
    assert trt["trt_engine_cache_path"].endswith("tensorrt/ort_cache")


def test_fp32_on_the_tensorrt_provider_stays_fp32(trt_onnx):
    opts = tensorrt_provider_options(_config(), "fp32", trt_onnx)
    assert opts["trt_fp16_enable"] == "False" and opts["trt_int8_enable"] == "False"


def test_tensorrt_provider_refuses_an_asymmetric_int8_model(tmp_path, trt_onnx, trt_calib):
    from efficientbioai.compression.quantize_ort import OnnxRuntimeQuantizer
    from efficientbioai.config import OnnxRuntimeQuantSection

    u8 = OnnxRuntimeQuantizer(OnnxRuntimeQuantSection(), []).apply(trt_onnx, trt_calib, tmp_path)
    with pytest.raises(ConfigError, match="(?s)cannot run on TensorrtExecutionProvider.*Use tensorrt:int8") as err:
        tensorrt_provider_options(_config(), "int8", u8)
    assert "quantized bias" in str(err.value) and "uint8" in str(err.value)


def test_factory_passes_providers_to_onnxruntime(trt_onnx, trt_parser):
    from efficientbioai.engines.factory import create_engine

    cfg = parse_config(
        {
            **TINY,
            "engine": {"name": "onnxruntime", "precision": "fp32", "providers": ["CUDAExecutionProvider"]},
            "artefacts": {"onnxruntime:fp32": str(trt_onnx)},
        }
    )
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider"):
        create_engine("onnxruntime:fp32", cfg, trt_parser)
