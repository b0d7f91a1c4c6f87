"""The QDQ ONNX TensorRT builds tensorrt:int8 from: symmetric S8, per-channel weights, close to fp32."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from efficientbioai.compression.quantize_ort import OnnxRuntimeQuantizer
from efficientbioai.config import OnnxRuntimeQuantSection
from efficientbioai.engines.ort_engine import ORTModule
from efficientbioai.engines.tensorrt_qdq import TRT_OP_TYPES, check_symmetric_s8, summarize_qdq
from efficientbioai.errors import ArtefactError
from efficientbioai.tasks.image_metrics import pearson


def _qdq_nodes(path):
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    return model, inits, nodes


def test_zero_points_are_int8_zero_for_weights_and_activations(trt_qdq):
    model, inits, nodes = _qdq_nodes(trt_qdq)
    assert nodes
    weights = [n for n in nodes if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    activations = [n for n in nodes if n.op_type == "QuantizeLinear" and n.input[0] not in inits]
    assert weights and activations
    for n in nodes:
        zp = inits[n.input[2]]
        assert zp.dtype == np.int8, (n.name, zp.dtype)
        assert not zp.any(), (n.name, zp)
    for n in weights:  # weights stored as int8, one scale per output channel
        w, scale = inits[n.input[0]], inits[n.input[1]]
        assert w.dtype == np.int8
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        assert scale.ndim == 1 and scale.size == w.shape[axis] > 1
        consumer = next(c for c in model.graph.node if n.output[0] in c.input)
        assert axis == {"Conv": 0, "ConvTranspose": 1}[consumer.op_type]  # the output-channel axis
    for n in activations:  # activations: one scale per tensor
        assert inits[n.input[1]].size == 1


def test_only_inputs_of_weighted_layers_are_quantized_and_biases_stay_float(trt_qdq, trt_parser):
    import fnmatch

    model, inits, _ = _qdq_nodes(trt_qdq)
    producers = {o: n for n in model.graph.node for o in n.output}
    keep_float = trt_parser.keep_float_nodes()  # the parser's output stage stays float
    assert keep_float
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    floats = [n for n in convs if any(fnmatch.fnmatch(n.name, k) for k in keep_float)]
    assert floats and all(n.input[1] in inits for n in floats)  # float weights, no DequantizeLinear
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose") and node not in floats:
            assert producers[node.input[0]].op_type == "DequantizeLinear"  # quantized input
            assert producers[node.input[1]].op_type == "DequantizeLinear"  # quantized weight
            if len(node.input) > 2:
                assert node.input[2] in inits and inits[node.input[2]].dtype == np.float32  # float bias
        if node.op_type == "QuantizeLinear":
            assert {c.op_type for c in model.graph.node if node.output[0] in c.input} == {"DequantizeLinear"}
    # every Q/DQ pair exists for a weighted layer (other consumers of the same tensor share it)
    for dq in model.graph.node:
        if dq.op_type == "DequantizeLinear":
            users = {c.op_type for c in model.graph.node if dq.output[0] in c.input}
            assert users & set(TRT_OP_TYPES), users


def test_summary_and_checker_accept_it(trt_qdq):
    s = check_symmetric_s8(trt_qdq)
    assert s.problems == [] and s.zero_point_types == {"int8"}
    assert s.per_channel_weights >= 8 and s.per_tensor_activations >= 1


def test_runs_in_onnxruntime_close_to_fp32(trt_onnx, trt_qdq, trt_parser):
    sample = next(trt_parser.evaluation_samples())  # evaluation data, never used for calibration
    x = np.stack([trt_parser.preprocess(sample.image)[:, :64, :64]] * 2).astype(np.float32)
    ref = ORTModule(trt_onnx)(x)
    q = ORTModule(trt_qdq, "int8")(x)
    assert q.shape == ref.shape
    assert pearson(q, ref) > 0.99
    assert np.abs(q - ref).max() < 0.1 * np.abs(ref).max()


def test_checker_names_what_an_asymmetric_u8_model_gets_wrong(tmp_path, trt_onnx, trt_calib):
    u8 = OnnxRuntimeQuantizer(OnnxRuntimeQuantSection(), []).apply(trt_onnx, trt_calib, tmp_path)  # U8 activations
    problems = summarize_qdq(u8).problems
    assert any("uint8" in p for p in problems)
    with pytest.raises(ArtefactError, match="symmetric S8") as err:
        check_symmetric_s8(u8)
    assert "activation_type int8" in str(err.value)


def test_checker_rejects_an_unquantized_model(trt_onnx):
    with pytest.raises(ArtefactError, match="not quantized"):
        check_symmetric_s8(trt_onnx)
