"""The engine builder, driven against a FAKE ``tensorrt`` module (tests/tensorrt/fake_tensorrt.py).

The fake is not TensorRT: it records which TensorRT 10 API calls the builder makes, with which
arguments, and rejects what TensorRT would (a weakly typed Q/DQ network without the INT8 flag,
an input without a profile, a profile that contradicts a static dimension). What TensorRT
itself does with the network is verified only by tests/tensorrt/test_gpu.py on a GPU machine.
"""

import json

import pytest

from efficientbioai.compression import convert_tensorrt
from efficientbioai.compression.convert_tensorrt import build_engine, build_tensorrt_variant
from efficientbioai.config import parse_config
from efficientbioai.engines.tensorrt_support import profile_shapes
from efficientbioai.errors import BackendUnavailableError, ExportError
from tests.tensorrt.conftest import TRT_TINY, install_fake
from tests.tensorrt.fake_tensorrt import make_fake_tensorrt


def _names(calls):
    return [c[0] for c in calls]


def _settings(**kw):
    return parse_config({**TRT_TINY, "engine": {**TRT_TINY["engine"], "tensorrt": kw}}).engine.tensorrt


SHAPES = {"input": ((1, 1, 64, 64), (2, 1, 64, 64), (4, 1, 128, 128))}


def test_int8_build_makes_the_calls_tensorrt_10_needs(fake_trt, trt_qdq, tmp_path):
    cache = tmp_path / "timing.cache"
    out = build_engine(trt_qdq, tmp_path / "model_int8.engine", "int8", _settings(), SHAPES, cache, "GPU X")
    calls = fake_trt.calls
    assert ("create_network", 0) in calls  # weakly typed on TensorRT 10 (explicit batch is implicit)
    assert ("parse_from_file", str(trt_qdq)) in calls
    assert ("set_memory_pool_limit", "WORKSPACE", 1024 << 20) in calls
    assert ("set_flag", "INT8") in calls and ("set_flag", "FP16") in calls  # Q/DQ int8, the rest fp16
    assert ("set_shape", "input", *SHAPES["input"]) in calls
    assert ("create_timing_cache", b"") in calls and ("set_timing_cache", False) in calls
    order = _names(calls)
    assert order.index("add_optimization_profile") < order.index("build_serialized_network")
    assert order.index("set_timing_cache") < order.index("build_serialized_network")
    plan = json.loads(out.read_bytes()[8:])
    assert plan["tensors"]["input"]["profile"] == [list(s) for s in SHAPES["input"]]
    assert set(plan["flags"]) == {"INT8", "FP16", "TF32"} and plan["workspace"] == 1024 << 20
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["tensorrt"] == "10.8.0" and info["device"] == "GPU X" and info["float_layers"] == "fp16"
    assert info["profile"] == {"input": [list(s) for s in SHAPES["input"]]}
    assert cache.read_bytes() == b"+timings"
    # a second build starts from the saved timing cache
    build_engine(trt_qdq, tmp_path / "again.engine", "int8", _settings(), SHAPES, cache)
    assert ("create_timing_cache", b"+timings") in calls
    assert not list(tmp_path.glob(".*partial*"))  # no temporary file left


def test_int8_without_fp16_fallback_keeps_float_layers_in_true_fp32(fake_trt, trt_qdq, tmp_path):
    out = build_engine(trt_qdq, tmp_path / "e.engine", "int8", _settings(fp16_fallback=False, workspace_mb=64), SHAPES)
    calls = fake_trt.calls
    assert ("set_flag", "FP16") not in calls and ("clear_flag", "TF32") in calls
    assert ("set_memory_pool_limit", "WORKSPACE", 64 << 20) in calls
    assert set(json.loads(out.read_bytes()[8:])["flags"]) == {"INT8"}
    assert json.loads(out.with_suffix(".json").read_text())["float_layers"] == "fp32"


def test_fp16_build_from_the_fp32_onnx(fake_trt, trt_onnx, tmp_path):
    build_engine(trt_onnx, tmp_path / "model_fp16.engine", "fp16", _settings(), SHAPES)
    assert ("set_flag", "FP16") in fake_trt.calls and ("set_flag", "INT8") not in fake_trt.calls


def test_tensorrt_11_builds_strongly_typed_without_precision_flags(monkeypatch, trt_qdq, trt_onnx, tmp_path):
    trt = install_fake(monkeypatch, make_fake_tensorrt("11.0.0", strong_only=True))
    out = build_engine(trt_qdq, tmp_path / "e.engine", "int8", _settings(), SHAPES)
    assert ("create_network", 1 << 5) in trt.calls  # STRONGLY_TYPED
    assert not [c for c in trt.calls if c[0] == "set_flag"]
    assert json.loads(out.read_bytes()[8:])["strong"] is True
    with pytest.raises(BackendUnavailableError, match="tensorrt:fp16 needs weak typing"):
        build_engine(trt_onnx, tmp_path / "f.engine", "fp16", _settings(), SHAPES)


def test_strongly_typed_on_request(fake_trt, trt_qdq, tmp_path):
    build_engine(trt_qdq, tmp_path / "e.engine", "int8", _settings(strongly_typed=True), SHAPES)
    assert ("create_network", 1 << 5) in fake_trt.calls


def test_parse_and_build_failures_raise_with_the_reason(fake_trt, tmp_path, trt_qdq):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ExportError, match="TensorRT cannot parse"):
        build_engine(bad, tmp_path / "x.engine", "int8", _settings(), SHAPES)
    with pytest.raises(ExportError, match="input 'input' has no profile shape"):
        build_engine(trt_qdq, tmp_path / "x.engine", "int8", _settings(), {"other": SHAPES["input"]})
    unordered = {"input": ((4, 1, 64, 64), (2, 1, 64, 64), (4, 1, 64, 64))}
    with pytest.raises(ExportError, match="could not build the int8 engine.*bad profile"):  # TensorRT's log, kept
        build_engine(trt_qdq, tmp_path / "x.engine", "int8", _settings(), unordered)
    assert not (tmp_path / "x.engine").exists()


def test_weakly_typed_qdq_without_int8_flag_is_what_the_fake_rejects(fake_trt, trt_qdq, tmp_path, monkeypatch):
    """Guards the fake itself: it must fail where TensorRT would, or the tests above prove little."""
    monkeypatch.setattr(convert_tensorrt, "_set_precision", lambda *a: "fp32")
    with pytest.raises(ExportError, match="need BuilderFlag.INT8"):
        build_engine(trt_qdq, tmp_path / "x.engine", "int8", _settings(), SHAPES)


def test_build_variant_quantizes_then_builds_on_the_device(fake_trt, trt_parser, trt_onnx, trt_calib, tmp_path):
    config = parse_config({**TRT_TINY, "engine": {**TRT_TINY["engine"], "tensorrt": {"device": 1, "max_batch": 8}}})
    out = build_tensorrt_variant("tensorrt:int8", config, trt_parser, tmp_path, trt_onnx, trt_calib)
    assert out == tmp_path / "tensorrt" / "model_int8.engine" and out.is_file()
    assert (tmp_path / "tensorrt" / "model_int8.onnx").is_file()  # the symmetric S8 QDQ it was built from
    assert (tmp_path / "tensorrt" / "ort_calibration.json").is_file()
    assert (tmp_path / "tensorrt" / "timing.cache").is_file()
    calls = fake_trt.calls
    assert ("require_cuda", 1) in calls and ("on_device", 1) in calls
    assert ("parse_from_file", str(tmp_path / "tensorrt" / "model_int8.onnx")) in calls
    assert ("set_shape", "input", (1, 1, 64, 64), (2, 1, 64, 64), (8, 1, 64, 64)) in calls
    q = json.loads(out.with_suffix(".json").read_text())["quantization"]
    assert q["calibration"]["method"] == "percentile" and q["per_channel_weights"] >= 8
    assert q["keep_float"] == trt_parser.keep_float_nodes()
    fp16 = build_tensorrt_variant("tensorrt:fp16", config, trt_parser, tmp_path, trt_onnx, trt_calib)
    assert fp16.name == "model_fp16.engine" and ("parse_from_file", str(trt_onnx)) in calls


def test_shapes_helper_matches_the_builder_input(trt_onnx):
    from efficientbioai.engines.tensorrt_support import Profile, onnx_inputs

    shapes = profile_shapes(onnx_inputs(trt_onnx), Profile(1, 2, 4, (64, 64), (64, 64), (128, 128)))
    assert shapes["input"] == ((1, 1, 64, 64), (2, 1, 64, 64), (4, 1, 128, 128))
