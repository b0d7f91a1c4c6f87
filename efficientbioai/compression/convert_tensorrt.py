"""ONNX → serialized TensorRT engine (TensorRT 10+ Python API), built on this machine's GPU.

``tensorrt:int8`` is built by explicit quantization from a symmetric S8 QDQ ONNX
(``quantize_trt.TensorRTQuantizer``), ``tensorrt:fp16`` from the verified fp32 ONNX. Tactic
timings are kept in a timing cache so a rebuild is fast.

Typing: TensorRT 10 builds "weakly typed" networks where precision flags choose kernels
(``INT8`` for the Q/DQ layers, ``FP16`` for the layers left in float when ``fp16_fallback``);
TensorRT 11 removed those flags and builds strongly typed networks, whose Q/DQ layers run in
int8 and the rest in the ONNX's own float type. ``engine.tensorrt.strongly_typed: null`` picks
weak typing where the flags exist.

``tensorrt`` is imported only when called (:class:`BackendUnavailableError` without it). An
engine only runs on the TensorRT version and GPU model it was built with, so the build records
both next to the engine (``model_<precision>.json``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from efficientbioai.engines.tensorrt_qdq import check_symmetric_s8
from efficientbioai.engines.tensorrt_support import (
    ALTERNATIVES,
    Shape,
    on_device,
    onnx_inputs,
    profile_from_config,
    profile_shapes,
    require_cuda,
    require_tensorrt,
)
from efficientbioai.errors import BackendUnavailableError, ConfigError, ExportError
from efficientbioai.manifest import write_atomic, write_json
from efficientbioai.registry import QUANTIZERS

log = logging.getLogger(__name__)


def _make_logger(trt):
    """A TensorRT logger that forwards to ``logging`` and keeps the errors for our exceptions."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):  # noqa: D401 - TensorRT's callback
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                self.errors.append(str(msg))
                log.error("TensorRT: %s", msg)
            elif severity == trt.ILogger.Severity.WARNING:
                log.warning("TensorRT: %s", msg)
            else:
                log.debug("TensorRT: %s", msg)

    return _Logger()


def use_strong_typing(trt, settings) -> bool:
    """``settings.strongly_typed``, or (unset) strong typing only where the precision flags are gone."""
    if settings.strongly_typed is not None:
        return settings.strongly_typed
    return not hasattr(trt.BuilderFlag, "INT8")


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    precision: str,
    settings,
    shapes: dict[str, tuple[Shape, Shape, Shape]],
    timing_cache: Path | None = None,
    device_name: str = "",
    extra_info: dict | None = None,
) -> Path:
    """Parse ``onnx_path``, build a ``precision`` engine for ``shapes`` and write it to ``engine_path``.

    ``settings`` is the ``engine.tensorrt`` section. Writes ``engine_path`` and, beside it, a
    ``.json`` with how it was built (and ``extra_info``); updates ``timing_cache``. The current
    CUDA device is used (see :func:`on_device`).
    """
    trt = require_tensorrt(f"tensorrt:{precision}")
    if precision not in ("int8", "fp16"):
        raise ConfigError(f"TensorRT precision must be int8 or fp16, got {precision!r}")
    logger = _make_logger(trt)
    try:
        builder = trt.Builder(logger)
    except Exception as exc:  # pybind raises when TensorRT cannot initialise CUDA
        logger.errors.append(str(exc))
        builder = None
    if builder is None:
        raise BackendUnavailableError(
            f"TensorRT could not create a builder (no usable CUDA GPU?): {' | '.join(logger.errors)}. {ALTERNATIVES}"
        )
    strong = use_strong_typing(trt, settings)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strong else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ExportError(f"TensorRT cannot parse {onnx_path}:\n  " + "\n  ".join(errors or logger.errors))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    float_layers = _set_precision(trt, config, precision, settings, strong)

    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        if name not in shapes:
            raise ExportError(f"{onnx_path}: input {name!r} has no profile shape (known: {sorted(shapes)})")
        profile.set_shape(name, *shapes[name])
    config.add_optimization_profile(profile)

    cache_bytes = timing_cache.read_bytes() if timing_cache is not None and timing_cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)

    typing = "strong" if strong else "weak"
    log.info("building TensorRT %s engine from %s (%s typing)", precision, onnx_path.name, typing)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(
            f"TensorRT could not build the {precision} engine from {onnx_path}: "
            + (" | ".join(logger.errors[-5:]) or "no reason given (raise the TensorRT log level)")
        )
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(engine_path, serialized)  # TensorRT's IHostMemory is a buffer
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(timing_cache, config.get_timing_cache().serialize())
    info = {
        "tensorrt": trt.__version__,
        "device": device_name,
        "precision": precision,
        "float_layers": float_layers,
        "typing": typing,
        "workspace_mb": settings.workspace_mb,
        "source": onnx_path.name,
        "profile": {name: [list(s) for s in mm] for name, mm in shapes.items()},
        **(extra_info or {}),
    }
    write_json(engine_path.with_suffix(".json"), info)
    return engine_path


def _set_precision(trt, config, precision: str, settings, strong: bool) -> str:
    """Set the builder's precision flags; returns the precision of layers without Q/DQ."""
    if strong:
        if precision == "fp16":
            raise BackendUnavailableError(
                "tensorrt:fp16 needs weak typing (TensorRT 10's FP16 builder flag); strongly typed "
                "networks take their precision from the ONNX types and this version does not convert "
                "the ONNX to fp16. Use tensorrt:int8, TensorRT 10 with engine.tensorrt.strongly_typed: "
                "false, or onnxruntime with engine.providers: [TensorrtExecutionProvider]"
            )
        if settings.fp16_fallback:
            log.warning("strongly typed TensorRT network: layers without Q/DQ run in fp32 (fp16_fallback ignored)")
        _no_tf32(trt, config)
        return "fp32"
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # weakly typed networks need it for their Q/DQ layers
        if not settings.fp16_fallback:
            _no_tf32(trt, config)
            return "fp32"
    config.set_flag(trt.BuilderFlag.FP16)
    return "fp16"


def _no_tf32(trt, config) -> None:
    """Keep fp32 layers in true fp32: TensorRT allows TF32 (10-bit mantissa) by default."""
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)


def build_tensorrt_variant(
    variant: str, config, parser, work: Path, onnx_path: Path, calib: list[np.ndarray], validation=None
) -> Path:
    """``tensorrt/model_<precision>.engine`` for ``variant`` (``tensorrt:int8`` or ``tensorrt:fp16``).

    With ``quantize.onnxruntime.max_accuracy_drop`` and ``validation``, the QDQ model keeps the
    layers ONNX Runtime's accuracy control ranks most sensitive in float (the ranking is run
    on the QDQ model in ONNX Runtime on the CPU, before TensorRT builds the engine).

    The profile, TensorRT and the GPU are checked first, so a missing one fails before any work;
    int8 then writes its QDQ ONNX (``tensorrt/model_int8.onnx``, ranges in ``ort_calibration.json``).
    """
    precision = variant.split(":")[1]
    settings = config.engine.tensorrt
    shapes = profile_shapes(onnx_inputs(onnx_path), profile_from_config(config))
    require_tensorrt(variant)
    require_cuda(settings.device, variant)
    out_dir = work / "tensorrt"
    source, extra = onnx_path, {}  # extra: how the QDQ model was made, beside how the engine was built
    if precision == "int8":
        quantizer = QUANTIZERS.get("tensorrt")(config.quantize.onnxruntime, parser.keep_float_nodes(), validation)
        source = quantizer.apply(onnx_path, calib, out_dir)
        qdq = check_symmetric_s8(source)
        s = quantizer.settings
        extra["quantization"] = {
            "calibration": {"method": s.method, "percentile": s.percentile, "num_samples": len(calib)},
            "weights": "int8, symmetric, per output channel",
            "activations": "int8, symmetric, per tensor",
            "quantized_ops": list(getattr(quantizer, "op_types", None) or []),
            "keep_float": parser.keep_float_nodes(),
            "per_channel_weights": qdq.per_channel_weights,
            "quantized_activations": qdq.per_tensor_activations,
        }
    cache = settings.timing_cache or out_dir / "timing.cache"
    with on_device(settings.device, variant) as device_name:
        return build_engine(
            source, out_dir / f"model_{precision}.engine", precision, settings, shapes, cache, device_name, extra
        )
