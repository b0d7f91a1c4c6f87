"""Symmetric S8 QDQ ONNX for TensorRT's explicit quantization, and a checker for it.

TensorRT quantizes symmetrically: every Q/DQ pair must have a signed int8 zero point of 0.
Our ONNX Runtime quantizer (``quantize_ort.py``: our own calibrator, then ``quantize_static``)
makes such a model when its types are forced to S8 with symmetric activations:

- weights: S8, symmetric, per output channel (axis 0 for ``Conv``, 1 for ``ConvTranspose``);
- activations: S8, symmetric, one scale per tensor, from the configured calibration method
  (``quantize.onnxruntime.method``: percentile by default).

Only the inputs of weighted layers are quantized (TensorRT's Q/DQ placement recommendation:
quantize the inputs of Conv/ConvTranspose/Gemm/MatMul, let TensorRT fuse Q into the producer);
other layers and the parser's ``keep_float`` nodes stay in float and run in fp16 or fp32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from efficientbioai.compression.quantize_ort import OnnxRuntimeQuantizer
from efficientbioai.engines.tensorrt_qdq import TRT_OP_TYPES, check_symmetric_s8
from efficientbioai.registry import register_quantizer

#: The ONNX Runtime quantizer settings TensorRT needs, whatever the config says for ORT.
SYMMETRIC_S8 = {"activation_type": "int8", "weight_type": "int8", "symmetric_activations": True, "per_channel": True}


@register_quantizer("tensorrt")
class TensorRTQuantizer(OnnxRuntimeQuantizer):
    """``tensorrt/model_int8.onnx``: symmetric S8 QDQ (per-channel weights, per-tensor activations).

    ``settings`` is the ``quantize.onnxruntime`` block (its calibration method and percentile
    are used); the integer types and symmetry are forced to what TensorRT accepts.
    """

    variant = "tensorrt:int8"
    op_types = TRT_OP_TYPES
    # Biases stay float (TensorRT dequantizes int8 only, not ORT's int32 biases); outputs of
    # weighted layers are not quantized (the next layer's input Q/DQ covers them).
    extra_options = {"QuantizeBias": False, "OpTypesToExcludeOutputQuantization": list(TRT_OP_TYPES)}

    def __init__(self, settings, keep_float: list[str], validation=None) -> None:
        super().__init__(settings.model_copy(update=SYMMETRIC_S8), keep_float, validation)

    def apply(self, onnx_path: Path, calibration: list[np.ndarray], out_dir: Path) -> Path:
        out = super().apply(onnx_path, calibration, out_dir)
        check_symmetric_s8(out)
        return out
