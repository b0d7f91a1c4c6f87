"""Int8 post-training quantization: ONNX Runtime QDQ and OpenVINO/NNCF."""

import json

import numpy as np
import onnx
import pytest

from efficientbioai.compression.quantize_ort import OnnxRuntimeQuantizer
from efficientbioai.compression.quantize_ov import OpenVINOQuantizer
from efficientbioai.config import OnnxRuntimeQuantSection, OpenVINOQuantSection
from efficientbioai.engines.openvino_engine import OPVModule
from efficientbioai.engines.ort_engine import ORTModule
from efficientbioai.errors import ConfigError
from efficientbioai.tasks.image_metrics import pearson


@pytest.fixture(scope="module")
def fp32(tiny_experiment):
    return tiny_experiment / "model.onnx"


@pytest.fixture(scope="module")
def calib(tiny_config):
    from efficientbioai.config import load_config
    from efficientbioai.parsers.base import create_parser

    return list(create_parser(load_config(tiny_config)).calibration_inputs())


@pytest.fixture(scope="module")
def test_batch(tiny_config):
    from efficientbioai.config import load_config
    from efficientbioai.parsers.base import create_parser

    parser = create_parser(load_config(tiny_config))
    sample = next(parser.evaluation_samples())  # evaluation data, never used for calibration
    return parser.preprocess(sample.image)[None, :, :64, :64].copy()


def _ops(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def _ranges(path):
    return json.loads(path.read_text())


def test_ort_int8_is_qdq_u8_s8_per_channel_and_close_to_fp32(tmp_path, fp32, calib, test_batch):
    out = OnnxRuntimeQuantizer(OnnxRuntimeQuantSection(), []).apply(fp32, calib, tmp_path)
    model = onnx.load(str(out))
    ops = _ops(out)
    assert ops.count("QuantizeLinear") > 5 and "DequantizeLinear" in ops
    inits = {i.name: i for i in model.graph.initializer}
    zero_points = [
        inits[n.input[2]]
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and len(n.input) > 2 and n.input[2] in inits
    ]
    dtypes = {onnx.helper.tensor_dtype_to_np_dtype(z.data_type) for z in zero_points}
    assert np.dtype("uint8") in dtypes and np.dtype("int8") in dtypes  # U8 activations, S8 weights
    assert any(len(z.dims) == 1 and z.dims[0] > 1 for z in zero_points)  # per-channel weights
    ref = ORTModule(fp32)(test_batch)
    q = ORTModule(out)(test_batch)
    assert pearson(q, ref) > 0.99


def _max_weight_code(path):
    """Largest |int8 code| among the quantized convolution weights of a QDQ model."""
    inits = onnx.load(str(path)).graph.initializer
    codes = [onnx.numpy_helper.to_array(i) for i in inits if i.data_type == onnx.TensorProto.INT8 and len(i.dims) > 1]
    return max(int(np.abs(c.astype(np.int16)).max()) for c in codes)


def test_reduce_range_keeps_weights_in_7_bits(tmp_path, fp32, calib):
    """Without VNNI, ORT's u8 x s8 kernels add product pairs in a saturating int16: 7-bit weights
    (|code| <= 64) cannot overflow it; 8-bit ones use the whole range (127). TensorRT keeps 8 bits."""
    from efficientbioai.compression.quantize_trt import TensorRTQuantizer

    for reduce, limit in ((True, 64), (False, 127)):
        out = OnnxRuntimeQuantizer(OnnxRuntimeQuantSection(reduce_range=reduce), []).apply(
            fp32, calib, tmp_path / str(reduce)
        )
        assert _max_weight_code(out) == limit
    trt = TensorRTQuantizer(OnnxRuntimeQuantSection(reduce_range=True), [])
    assert trt.settings.reduce_range is False


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_calibration_methods_really_differ_from_minmax(tmp_path, fp32, calib, method):
    OnnxRuntimeQuantizer(OnnxRuntimeQuantSection(method="minmax"), []).apply(fp32, calib, tmp_path / "a")
    OnnxRuntimeQuantizer(OnnxRuntimeQuantSection(method=method), []).apply(fp32, calib, tmp_path / "b")
    a = _ranges(tmp_path / "a" / "ort_calibration.json")
    b = _ranges(tmp_path / "b" / "ort_calibration.json")
    assert json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True)
    assert method.lower() in json.dumps(b).lower()


def test_keep_float_leaves_named_node_unquantized(tmp_path, fp32, calib):
    last_conv = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == "Conv"][-1]
    out = OnnxRuntimeQuantizer(OnnxRuntimeQuantSection(), [last_conv]).apply(fp32, calib, tmp_path)
    model = onnx.load(str(out))
    node = next(n for n in model.graph.node if n.name == last_conv)
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    assert producers.get(node.input[1]) != "DequantizeLinear"  # weights stay float
    with pytest.raises(ConfigError, match="matches no node"):
        OnnxRuntimeQuantizer(OnnxRuntimeQuantSection(), ["no_such_node*"]).apply(fp32, calib, tmp_path / "x")


def test_openvino_int8_has_fake_quantize_and_is_close(tmp_path, fp32, calib, test_batch):
    out = OpenVINOQuantizer(OpenVINOQuantSection(), []).apply(fp32, calib, tmp_path)
    assert out.suffix == ".xml" and out.with_suffix(".bin").exists()
    assert "FakeQuantize" in out.read_text()
    ref = ORTModule(fp32)(test_batch)
    q = OPVModule(out, "int8")(test_batch)
    assert pearson(q, ref) > 0.98  # a barely trained tiny net; the bundled models do better


def test_openvino_keep_float(tmp_path, fp32, calib):
    import openvino as ov

    names = [
        op.get_friendly_name()
        for op in ov.Core().read_model(str(fp32)).get_ops()
        if op.get_type_name() == "Convolution"
    ]
    out = OpenVINOQuantizer(OpenVINOQuantSection(), [names[-1]]).apply(fp32, calib, tmp_path)
    full = OpenVINOQuantizer(OpenVINOQuantSection(), []).apply(fp32, calib, tmp_path / "full")
    int8_weights = 'element_type="i8"'  # NNCF stores quantized weights as i8 constants
    assert out.read_text().count(int8_weights) == full.read_text().count(int8_weights) - 1
    with pytest.raises(ConfigError, match="matches no OpenVINO op"):
        OpenVINOQuantizer(OpenVINOQuantSection(), ["nothing_like_this"]).apply(fp32, calib, tmp_path / "y")


def test_accuracy_control_keeps_the_validation_metric(tmp_path, fp32, calib, tiny_config):
    from efficientbioai.compression.build_experiment import _validation
    from efficientbioai.config import load_config
    from efficientbioai.parsers.base import create_parser

    cfg = load_config(tiny_config)
    validation = _validation(cfg, create_parser(cfg))
    assert len(validation.pairs) == 6 and validation.pairs[0][0].shape == (1, 1, 64, 64)
    settings = OpenVINOQuantSection(max_accuracy_drop=0.003)
    out = OpenVINOQuantizer(settings, [], validation).apply(fp32, calib, tmp_path)
    before = validation.score(ORTModule(fp32))
    after = validation.score(OPVModule(out, "int8"))
    assert after >= before - 0.003 - 1e-3  # NNCF measured it on the same pairs, up to engine noise


def test_accuracy_control_needs_validation(tmp_path, fp32, calib):
    with pytest.raises(ConfigError, match="needs validation pairs"):
        OpenVINOQuantizer(OpenVINOQuantSection(max_accuracy_drop=0.01), []).apply(fp32, calib, tmp_path)


def test_monai_unet_keeps_its_output_stage_in_float_by_default(tiny_experiment):
    manifest = json.loads((tiny_experiment / "manifest.json").read_text())
    assert manifest["calibration"]["keep_float"] == ["/model/model.2/*"]
