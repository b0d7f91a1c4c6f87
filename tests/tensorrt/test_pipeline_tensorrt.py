"""compress and inference with tensorrt variants: a plain error without TensorRT, a full run with the FAKE one.

The fake ``tensorrt`` (tests/tensorrt/fake_tensorrt.py) is not TensorRT; with it the pipeline's
tensorrt branch, the deploy.yaml/manifest entries and the engine factory are exercised end to end.
"""

import json

import numpy as np
import pytest
import yaml

from tests.helpers import write_config
from tests.tensorrt.conftest import TRT_TINY


@pytest.fixture
def trt_config(tmp_path):
    return write_config(tmp_path, TRT_TINY)


def test_compress_without_tensorrt_fails_plainly_and_leaves_nothing(no_trt, trt_config, tmp_path, capsys):
    from efficientbioai.cli import main

    exp = tmp_path / "exp"
    assert main(["compress", "--config", str(trt_config), "--exp_path", str(exp)]) == 2
    err = capsys.readouterr().err
    assert "error: tensorrt:int8 needs NVIDIA TensorRT 10 or newer and a CUDA GPU" in err
    assert "openvino:int8 or onnxruntime:int8" in err
    assert not exp.exists() and not list(tmp_path.glob(".exp*"))  # no staging folder left behind


def test_compress_and_run_with_the_fake_tensorrt(fake_trt, trt_config, tmp_path):
    from efficientbioai.compression.build_experiment import compress
    from efficientbioai.config import load_config
    from efficientbioai.engines.factory import create_engine
    from efficientbioai.engines.tensorrt_engine import TRTModule
    from efficientbioai.parsers.base import create_parser

    deploy = compress(trt_config, tmp_path / "exp")
    exp = deploy.parent
    data = yaml.safe_load(deploy.read_text())
    assert data["artefacts"]["tensorrt:int8"] == "tensorrt/model_int8.engine"
    manifest = json.loads((exp / "manifest.json").read_text())
    assert "tensorrt/model_int8.engine" in manifest["sha256"]
    assert (exp / "tensorrt" / "model_int8.onnx").is_file() and (exp / "tensorrt" / "model_int8.json").is_file()
    assert ("set_shape", "input", (1, 1, 64, 64), (2, 1, 64, 64), (2, 1, 64, 64)) in fake_trt.calls

    config = load_config(deploy)
    engine = create_engine("tensorrt:int8", config, create_parser(config))
    assert isinstance(engine, TRTModule)
    x = np.random.default_rng(1).random((2, 1, 64, 64), dtype=np.float32)
    np.testing.assert_array_equal(engine(x), 2 * x)


def test_tensorrt_qdq_model_uses_the_accuracy_control_ranking(fake_trt, tmp_path):
    """With quantize.onnxruntime.max_accuracy_drop the symmetric S8 QDQ model TensorRT builds
    from is ranked and reduced on the validation split, as ONNX Runtime int8 is."""
    from efficientbioai.compression.build_experiment import compress
    from efficientbioai.engines.tensorrt_qdq import check_symmetric_s8

    # A budget int8 cannot meet: the ranking runs; deployed is fp32, so compress does not refuse.
    cfg = {**TRT_TINY, "quantize": {"onnxruntime": {"max_accuracy_drop": 1e-6}}}
    cfg["engine"] = {"name": "onnxruntime", "precision": "fp32"}
    cfg["data"] = {**TRT_TINY.get("data", {}), "validation": {"num_samples": 2}}
    exp = compress(write_config(tmp_path, cfg), tmp_path / "exp").parent
    record = json.loads((exp / "tensorrt" / "model_int8_accuracy.json").read_text())
    assert record["variant"] == "tensorrt:int8" and record["max_drop"] == 1e-6
    assert record["within_budget"] or record["ranking"]  # ranked whenever all-int8 missed the budget
    check_symmetric_s8(exp / "tensorrt" / "model_int8.onnx")  # still what TensorRT accepts
