"""Symmetric S8 QDQ ONNX for TensorRT's explicit quantization.

Our ONNX Runtime quantizer (``quantize_ort.py``) makes one when its types are forced to S8 with
symmetric activations. Only the inputs of weighted layers are quantized (TensorRT's Q/DQ
placement recommendation: let TensorRT fuse Q into the producer); other layers and the parser's
``keep_float`` nodes stay in float and run in fp16 or fp32. The TensorRT build
(``convert_tensorrt.build_tensorrt_variant``) checks the result with ``check_symmetric_s8``.
"""

from __future__ import annotations

from efficientbioai.compression.quantize_ort import OnnxRuntimeQuantizer
from efficientbioai.engines.tensorrt_qdq import TRT_OP_TYPES
from efficientbioai.registry import register_quantizer

#: The ONNX Runtime quantizer settings TensorRT needs, whatever the config says for ORT.
#: TensorRT's int8 kernels accumulate in int32, so its weights keep all 8 bits (no ``reduce_range``).
SYMMETRIC_S8 = {
    "activation_type": "int8",
    "weight_type": "int8",
    "symmetric_activations": True,
    "per_channel": True,
    "reduce_range": False,
}


@register_quantizer("tensorrt")
class TensorRTQuantizer(OnnxRuntimeQuantizer):
    """``tensorrt/model_int8.onnx``: symmetric S8 QDQ (per-channel weights, per-tensor activations).

    ``settings`` is the ``quantize.onnxruntime`` block, with :data:`SYMMETRIC_S8` forced over it.
    """

    variant = "tensorrt:int8"
    op_types = TRT_OP_TYPES
    # Biases stay float (TensorRT dequantizes int8 only, not ORT's int32 biases); outputs of
    # weighted layers are not quantized (the next layer's input Q/DQ covers them).
    extra_options = {"QuantizeBias": False, "OpTypesToExcludeOutputQuantization": list(TRT_OP_TYPES)}

    def __init__(self, settings, keep_float: list[str], validation=None) -> None:
        super().__init__(settings.model_copy(update=SYMMETRIC_S8), keep_float, validation)
