"""engine.tensorrt: validation, and the optimization profile derived from the config and the ONNX inputs."""

import pytest

from efficientbioai.config import parse_config
from efficientbioai.engines.tensorrt_support import Profile, onnx_inputs, profile_from_config, profile_shapes
from efficientbioai.errors import ConfigError

BASE = {"model": {"parser": "monai_unet"}, "inference": {"tile": [64, 48], "batch_size": 4}}


def cfg(trt=None, inference=None, latency=None):
    data = {**BASE, "inference": {**BASE["inference"], **(inference or {})}}
    if trt is not None:
        data["engine"] = {"tensorrt": trt}
    if latency is not None:
        data["report"] = {"latency": latency}
    return parse_config(data)


def test_defaults_come_from_the_deployment():
    p = profile_from_config(cfg())
    assert p == Profile(1, 4, 4, (64, 48), (64, 48), (64, 48))
    s = cfg().engine.tensorrt
    assert (s.device, s.workspace_mb, s.fp16_fallback, s.strongly_typed, s.timing_cache) == (0, 1024, True, None, None)


def test_max_batch_covers_the_latency_batch():
    assert profile_from_config(cfg(latency={"batch_size": 16})).max_batch == 16
    assert profile_from_config(cfg(latency={"batch_size": 2})).max_batch == 4


def test_explicit_values_win_and_unset_tiles_span_tile_and_opt_tile():
    p = profile_from_config(cfg({"min_batch": 2, "opt_batch": 8, "max_batch": 32, "opt_tile": [128, 96]}))
    assert (p.min_batch, p.opt_batch, p.max_batch) == (2, 8, 32)
    assert (p.min_tile, p.opt_tile, p.max_tile) == ((64, 48), (128, 96), (128, 96))
    p = profile_from_config(cfg({"min_tile": [32, 32], "max_tile": [256, 256]}))
    assert (p.min_tile, p.opt_tile, p.max_tile) == ((32, 32), (64, 48), (256, 256))


@pytest.mark.parametrize(
    "trt, match",
    [
        ({"min_batch": 8, "max_batch": 4}, "min_batch <= opt_batch <= max_batch"),
        ({"min_tile": [64, 64], "max_tile": [32, 32]}, "min_tile <= opt_tile <= max_tile"),
        ({"min_tile": [64, 64, 8], "max_tile": [128, 128]}, "same number of sizes"),
        ({"opt_tile": [0, 64]}, "positive"),
        ({"workspace_mb": 0}, "workspace_mb"),
        ({"device": -1}, "device"),
        ({"unknown_key": 1}, "unknown key"),
    ],
)
def test_invalid_sections_name_the_key(trt, match):
    with pytest.raises(ConfigError, match=match):
        cfg(trt)


@pytest.mark.parametrize(
    "trt, inference, match",
    [
        ({"max_tile": [32, 32], "min_tile": [16, 16]}, None, r"inference.tile \[64, 48\] lies outside"),
        ({"max_batch": 2}, None, r"got 1, 4, 2 \(opt_batch defaults to inference.batch_size\)"),
        ({"opt_batch": 2, "max_batch": 2}, None, "inference.batch_size 4 lies outside min_batch..max_batch 1..2"),
        ({"opt_tile": [16, 16, 16]}, None, "opt_tile"),
    ],
)
def test_profiles_that_cannot_run_the_deployment_are_config_errors(trt, inference, match):
    with pytest.raises(ConfigError, match=match):
        profile_from_config(cfg(trt, inference))


def test_shapes_fill_dynamic_axes_and_keep_static_ones():
    p = Profile(1, 4, 8, (32, 32), (64, 48), (128, 96))
    shapes = profile_shapes({"input": ["batch", 1, "h", "w"]}, p)
    assert shapes == {"input": ((1, 1, 32, 32), (4, 1, 64, 48), (8, 1, 128, 96))}
    fixed = profile_shapes({"x": ["batch", 3, 64, 48]}, Profile(1, 4, 8, (64, 48), (64, 48), (64, 48)))
    assert fixed == {"x": ((1, 3, 64, 48), (4, 3, 64, 48), (8, 3, 64, 48))}


def test_a_profile_against_a_static_export_is_a_config_error():
    with pytest.raises(ConfigError, match="static batch of 1.*dynamic_batch"):
        profile_shapes({"input": [1, 1, "h", "w"]}, Profile(1, 4, 4, (64, 48), (64, 48), (64, 48)))
    with pytest.raises(ConfigError, match="static spatial axis 0 of 64"):
        profile_shapes({"input": ["b", 1, 64, 48]}, Profile(1, 4, 4, (32, 48), (64, 48), (64, 48)))
    with pytest.raises(ConfigError, match="3 dims"):
        profile_shapes({"input": ["b", 1, "w"]}, Profile(1, 1, 1, (8, 8), (8, 8), (8, 8)))


def test_shapes_of_the_exported_unet(trt_onnx, trt_parser):
    inputs = onnx_inputs(trt_onnx)
    assert list(inputs) == ["input"] and inputs["input"][1] == 1
    shapes = profile_shapes(inputs, profile_from_config(trt_parser.config))
    assert shapes == {"input": ((1, 1, 64, 64), (2, 1, 64, 64), (2, 1, 64, 64))}


def test_timing_cache_resolves_against_the_yaml_folder(tmp_path):
    from efficientbioai.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("model: {parser: monai_unet}\nengine: {tensorrt: {timing_cache: caches/trt.cache}}\n")
    assert load_config(path).engine.tensorrt.timing_cache == (tmp_path / "caches" / "trt.cache").resolve()


def test_providers_are_validated():
    assert cfg().engine.providers == ["CPUExecutionProvider"]
    ok = parse_config({**BASE, "engine": {"providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider"]}})
    assert ok.engine.providers[0] == "TensorrtExecutionProvider"
    with pytest.raises(ConfigError, match="engine.providers"):
        parse_config({**BASE, "engine": {"providers": ["CudaProvider"]}})
