"""Checks that a QDQ ONNX is what TensorRT's explicit quantization accepts: symmetric S8.

TensorRT quantizes symmetrically: every Q/DQ pair must have a signed int8 zero point of 0,
weights per output channel (axis 0 for ``Conv``, 1 for ``ConvTranspose``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from efficientbioai.errors import ArtefactError

#: Layers whose inputs get Q/DQ pairs for TensorRT.
TRT_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")

#: Per-channel weight axis TensorRT expects for convolutions: the output-channel axis of the weight.
_WEIGHT_AXIS = {"Conv": 0, "ConvTranspose": 1}


@dataclass
class QDQSummary:
    """What :func:`check_symmetric_s8` found in a QDQ model."""

    quantize_nodes: int = 0
    dequantize_nodes: int = 0
    per_channel_weights: int = 0
    per_tensor_activations: int = 0
    zero_point_types: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _axis(node) -> int:
    return next((a.i for a in node.attribute if a.name == "axis"), 1)


def summarize_qdq(onnx_path: Path) -> QDQSummary:
    """Count Q/DQ nodes and list every way the model departs from TensorRT's symmetric S8 scheme."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    inits = {i.name: i for i in graph.initializer}
    consumers = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    # weight tensors: initializers, and Q outputs of float weights (the Q + DQ form)
    weights = inits | {
        n.output[0]: inits[n.input[0]] for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] in inits
    }
    s = QDQSummary()
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if node.op_type == "QuantizeLinear":
            s.quantize_nodes += 1
        else:
            s.dequantize_nodes += 1
        where = f"{node.op_type} {node.name or node.output[0]!r}"
        if any(len(c.input) > 2 and c.input[2] == node.output[0] for c in consumers[node.output[0]]):
            s.problems.append(f"{where}: a quantized bias; TensorRT needs float biases (ORT's QuantizeBias=False)")
            continue
        if len(node.input) < 3 or node.input[2] not in inits:
            s.problems.append(f"{where}: no constant zero point (TensorRT needs an int8 zero point of 0)")
            continue
        zp = numpy_helper.to_array(inits[node.input[2]])
        s.zero_point_types.add(str(zp.dtype))
        if zp.dtype != np.int8:
            s.problems.append(f"{where}: zero point type {zp.dtype}, TensorRT needs int8")
        if np.any(zp != 0):
            s.problems.append(f"{where}: zero point {zp.ravel()[:4].tolist()} is not 0 (asymmetric)")
        scale = numpy_helper.to_array(inits[node.input[1]]) if node.input[1] in inits else None
        if scale is None:
            s.problems.append(f"{where}: scale is not a constant")
            continue
        if np.any(~np.isfinite(scale)) or np.any(scale <= 0):
            s.problems.append(f"{where}: scales must be finite and positive")
        if node.input[0] in weights:  # int8 weight + DQ, or float weight + Q + DQ
            w = weights[node.input[0]]
            stored = onnx.TensorProto.DataType.Name(w.data_type)
            if node.op_type == "DequantizeLinear" and node.input[0] in inits and w.data_type != onnx.TensorProto.INT8:
                s.problems.append(f"{where}: weight {w.name!r} is stored as {stored}, TensorRT needs INT8")
            users = [c.op_type for c in consumers[node.output[0]]]
            op = next((u for u in users if u in _WEIGHT_AXIS), None)
            if scale.size > 1 and node.op_type == "DequantizeLinear":
                s.per_channel_weights += 1
                axis = _axis(node) % len(w.dims)
                if op is not None and axis != _WEIGHT_AXIS[op]:
                    s.problems.append(
                        f"{where}: per-channel axis {axis} for a {op} weight; TensorRT needs {_WEIGHT_AXIS[op]}"
                    )
                if scale.size != w.dims[axis]:
                    s.problems.append(f"{where}: {scale.size} scales for {w.dims[axis]} channels")
        elif scale.size != 1:
            s.problems.append(f"{where}: activation scale has {scale.size} values; TensorRT takes one per tensor")
        elif node.op_type == "QuantizeLinear":
            s.per_tensor_activations += 1
    if s.quantize_nodes == 0 or s.dequantize_nodes == 0:
        s.problems.append("no QuantizeLinear/DequantizeLinear nodes: the model is not quantized")
    return s


def check_symmetric_s8(onnx_path: Path) -> QDQSummary:
    """The :class:`QDQSummary` of ``onnx_path``, or an :class:`ArtefactError` listing the problems."""
    s = summarize_qdq(onnx_path)
    if s.problems:
        shown = "\n  ".join(s.problems[:8]) + (f"\n  ... and {len(s.problems) - 8} more" if len(s.problems) > 8 else "")
        raise ArtefactError(
            f"{onnx_path}: not a symmetric S8 QDQ model TensorRT can build from:\n  {shown}\n"
            "Quantize with activation_type int8, weight_type int8 and symmetric activations "
            "(the tensorrt:int8 variant does this)."
        )
    return s
