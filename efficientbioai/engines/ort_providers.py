"""ONNX Runtime on an NVIDIA GPU: the CUDA and TensorRT execution providers for ``onnxruntime:*``.

The GPU route without the ``tensorrt`` Python package (``onnxruntime-gpu`` instead), on the same
ONNX files as the CPU variants. Select it in the config:

    engine:
      providers: [TensorrtExecutionProvider, CUDAExecutionProvider]

ONNX Runtime falls back to the CPU *silently* when a provider cannot be loaded, so
:func:`check_providers` stops with a clear error instead of reporting CPU numbers as GPU.
The TensorRT provider takes ``engine.tensorrt``'s profile and limits, like ``tensorrt:*``.
"""

from __future__ import annotations

from pathlib import Path

from efficientbioai.engines.tensorrt_qdq import check_symmetric_s8
from efficientbioai.engines.tensorrt_support import onnx_inputs, profile_from_config, profile_shapes
from efficientbioai.errors import ArtefactError, BackendUnavailableError, ConfigError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"


def session_providers(config, variant: str, onnx_path: Path) -> dict:
    """``ORTModule`` keyword arguments (``providers``, ``provider_options``) for ``engine.providers``."""
    precision = variant.split(":")[1]
    options = []
    for name in config.engine.providers:
        if name == CUDA:
            # fp32 stays fp32: no TF32 (10-bit mantissa) convolutions on Ampere and newer
            options.append({"device_id": str(config.engine.tensorrt.device), "use_tf32": "0"})
        elif name == TENSORRT:
            options.append(tensorrt_provider_options(config, precision, Path(onnx_path)))
        else:
            options.append({})
    return {"providers": list(config.engine.providers), "provider_options": options}


def tensorrt_provider_options(config, precision: str, onnx_path: Path) -> dict[str, str]:
    """Options of ONNX Runtime's TensorRT provider, from ``engine.tensorrt`` and the deployment.

    int8 needs a symmetric S8 QDQ model with float biases: ``onnxruntime:int8`` (made for the
    CPU kernels) is refused.
    """
    settings = config.engine.tensorrt
    if precision == "int8":
        try:
            check_symmetric_s8(onnx_path)
        except ArtefactError as exc:
            raise ConfigError(
                "onnxruntime:int8 cannot run on TensorrtExecutionProvider: its QDQ model is made for the "
                "CPU (ONNX Runtime's int8 kernels: asymmetric U8 activations, int32 biases), and TensorRT "
                "takes only symmetric S8 Q/DQ with float biases; ONNX Runtime would hand the rejected "
                "parts to another provider without saying so. Use tensorrt:int8 (TensorRT's own Python "
                "API builds it from a symmetric S8 QDQ model), onnxruntime:fp32 on TensorrtExecutionProvider, "
                f"or onnxruntime:int8 on CUDAExecutionProvider.\n{exc}"
            ) from None
    shapes = profile_shapes(onnx_inputs(onnx_path), profile_from_config(config))
    lo, opt, hi = (",".join(f"{name}:{'x'.join(map(str, mm[i]))}" for name, mm in shapes.items()) for i in range(3))
    cache = onnx_path.parent / "tensorrt" / "ort_cache"
    cache.mkdir(parents=True, exist_ok=True)
    return {
        "device_id": str(settings.device),
        "trt_max_workspace_size": str(settings.workspace_mb << 20),
        "trt_int8_enable": str(precision == "int8"),  # Q/DQ layers in int8 (weakly typed TensorRT)
        "trt_fp16_enable": str(precision == "int8" and settings.fp16_fallback),  # fp32 variant stays fp32
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(cache),
        "trt_profile_min_shapes": lo,
        "trt_profile_opt_shapes": opt,
        "trt_profile_max_shapes": hi,
    }


def check_providers(requested: list[str], active: list[str], available: list[str], path: Path) -> None:
    """Raise :class:`BackendUnavailableError` unless every requested GPU provider is active."""
    missing = [p for p in requested if p != CPU and p not in active]
    if not missing:
        return
    if not_built := [p for p in missing if p not in available]:
        why = (
            f"this onnxruntime build has no {', '.join(not_built)} (it has {', '.join(available)}); "
            "install onnxruntime-gpu instead of onnxruntime on a machine with an NVIDIA GPU"
        )
    else:
        why = (
            f"{', '.join(missing)} is built in but did not load: its CUDA/cuDNN/TensorRT libraries or "
            "the GPU are missing (ONNX Runtime's log above says which)"
        )
    raise BackendUnavailableError(
        f"{Path(path).name}: engine.providers asks for {requested}, but the session runs on {active}: "
        f"{why}. ONNX Runtime would silently run on the CPU; this run stops instead. Remove engine.providers "
        "to run onnxruntime on the CPU, or use the openvino variants."
    )
