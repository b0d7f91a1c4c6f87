"""ONNX → serialized TensorRT engine (TensorRT 10+ Python API), built on this machine's GPU.

``tensorrt:int8`` is built by explicit quantization from a symmetric S8 QDQ ONNX
(``quantize_trt.TensorRTQuantizer``: per-channel weights, per-tensor activations, calibrated by
our ONNX Runtime calibrator); ``tensorrt:fp16`` from the verified fp32 ONNX. The optimization
profile (min/opt/max batch and tile) comes from ``engine.tensorrt`` and the deployment
(:func:`profile_from_config`); the builder's workspace is capped and its tactic timings are
kept in a timing cache so a rebuild is fast.

Typing: TensorRT 10 builds "weakly typed" networks where precision flags choose kernels
(``INT8`` for the Q/DQ layers, ``FP16`` for the layers left in float when ``fp16_fallback``);
TensorRT 11 removed those flags and builds strongly typed networks, whose Q/DQ layers run in
int8 and the rest in the ONNX's own float type. ``engine.tensorrt.strongly_typed: null`` picks
weak typing where the flags exist.

Nothing here imports ``tensorrt`` at module level: without TensorRT or a CUDA GPU the functions
raise :class:`BackendUnavailableError` saying what is missing and what to use instead.
An engine only runs on the TensorRT version and GPU model it was built with, so the build
records both next to the engine (``model_<precision>.json``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from efficientbioai.errors import BackendUnavailableError, ConfigError, ExportError

log = logging.getLogger(__name__)

#: What to say instead, whenever TensorRT cannot be used here.
ALTERNATIVES = (
    "On a machine without TensorRT, run openvino:int8 or onnxruntime:int8 on the CPU (remove the "
    "tensorrt variants from report.compare and engine.name); on an NVIDIA GPU without the TensorRT "
    "Python package, onnxruntime-gpu with engine.providers: [CUDAExecutionProvider] runs the "
    "onnxruntime variants on the GPU."
)

Shape = tuple[int, ...]


def require_tensorrt(what: str = "TensorRT"):
    """The ``tensorrt`` module (10 or newer), or a :class:`BackendUnavailableError` saying why not."""
    try:
        import tensorrt as trt
    except Exception as exc:  # ImportError, or a broken install failing to load its libraries
        raise BackendUnavailableError(
            f"{what} needs NVIDIA TensorRT 10 or newer and a CUDA GPU, but the Python package "
            f"'tensorrt' cannot be imported here ({type(exc).__name__}: {exc}). Install it on a "
            f"machine with an NVIDIA GPU (pip install tensorrt; its libraries come from NVIDIA's "
            f"index, pypi.nvidia.com). {ALTERNATIVES}"
        ) from None
    version = getattr(trt, "__version__", "0")
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    if major < 10:
        raise BackendUnavailableError(
            f"{what} needs TensorRT 10 or newer (named-tensor API, memory pools); found {version}. {ALTERNATIVES}"
        )
    return trt


def require_cuda(device: int = 0, what: str = "TensorRT"):
    """``torch`` with CUDA device ``device`` usable, or a :class:`BackendUnavailableError`."""
    import torch

    if not torch.cuda.is_available():
        build = (
            "a CPU-only build of torch" if torch.version.cuda is None else f"torch built for CUDA {torch.version.cuda}"
        )
        raise BackendUnavailableError(
            f"{what} needs an NVIDIA GPU, but torch sees no CUDA device ({build}; "
            f"torch.cuda.is_available() is False). {ALTERNATIVES}"
        )
    count = torch.cuda.device_count()
    if device >= count:
        raise BackendUnavailableError(
            f"{what}: engine.tensorrt.device is {device} but this machine has {count} CUDA device(s) (0..{count - 1})"
        )
    return torch


@contextmanager
def on_device(device: int, what: str = "TensorRT") -> Iterator[str]:
    """Make CUDA device ``device`` current (TensorRT builds and loads on the current device); yields its name."""
    torch = require_cuda(device, what)
    with torch.cuda.device(device):
        yield torch.cuda.get_device_name(device)


# -- optimization profile -------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """Batch and spatial-tile ranges an engine accepts, and the shape it is tuned for."""

    min_batch: int
    opt_batch: int
    max_batch: int
    min_tile: Shape
    opt_tile: Shape
    max_tile: Shape


def profile_from_config(config) -> Profile:
    """The profile of ``engine.tensorrt``, its unset values derived from the deployment.

    ``opt_batch`` = ``inference.batch_size``; ``min_batch`` = 1; ``max_batch`` = the largest of
    ``opt_batch``, ``inference.batch_size`` and ``report.latency.batch_size``. ``opt_tile`` =
    ``inference.tile``; ``min_tile``/``max_tile`` = the element-wise min/max of ``inference.tile``
    and ``opt_tile``. The deployed batch and tile must lie inside the profile.
    """
    s = config.engine.tensorrt
    tile = tuple(config.inference.tile)
    batch = config.inference.batch_size
    latency_batch = config.report.latency.batch_size or batch
    opt_batch = s.opt_batch or batch
    max_batch = s.max_batch or max(opt_batch, batch, latency_batch)
    min_batch = s.min_batch
    opt_tile = tuple(s.opt_tile or tile)
    if len(opt_tile) != len(tile):
        raise ConfigError(
            f"engine.tensorrt.opt_tile {list(opt_tile)} has {len(opt_tile)} sizes, inference.tile {list(tile)}"
        )
    min_tile = tuple(s.min_tile or (min(a, b) for a, b in zip(tile, opt_tile)))
    max_tile = tuple(s.max_tile or (max(a, b) for a, b in zip(tile, opt_tile)))
    profile = Profile(min_batch, opt_batch, max_batch, min_tile, opt_tile, max_tile)
    problems = []
    if not min_batch <= opt_batch <= max_batch:
        hint = "" if s.opt_batch else " (opt_batch defaults to inference.batch_size)"
        problems.append(f"need min_batch <= opt_batch <= max_batch, got {min_batch}, {opt_batch}, {max_batch}{hint}")
    for name, t in (("min_tile", min_tile), ("max_tile", max_tile)):
        if len(t) != len(tile):
            problems.append(f"{name} {list(t)} has {len(t)} sizes but inference.tile {list(tile)} has {len(tile)}")
    if not problems:
        if any(a > b for a, b in zip(min_tile, opt_tile)) or any(a > b for a, b in zip(opt_tile, max_tile)):
            problems.append(
                f"need min_tile <= opt_tile <= max_tile, got {list(min_tile)}, {list(opt_tile)}, {list(max_tile)}"
            )
        if any(not a <= t <= b for a, t, b in zip(min_tile, tile, max_tile)):
            problems.append(
                f"inference.tile {list(tile)} lies outside min_tile..max_tile {list(min_tile)}..{list(max_tile)}"
            )
        for key, b in (("inference.batch_size", batch), ("report.latency.batch_size", latency_batch)):
            if not min_batch <= b <= max_batch:
                problems.append(f"{key} {b} lies outside min_batch..max_batch {min_batch}..{max_batch}")
    if problems:
        raise ConfigError("engine.tensorrt: " + "; ".join(problems))
    return profile


def onnx_inputs(onnx_path: Path) -> dict[str, list[int | str]]:
    """Graph inputs of an ONNX file: name → dims (an int, or the name of a dynamic axis)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    out = {}
    for value in graph.input:
        if value.name in weights:
            continue
        dims = value.type.tensor_type.shape.dim
        out[value.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
    return out


def profile_shapes(inputs: dict[str, list[int | str]], profile: Profile) -> dict[str, tuple[Shape, Shape, Shape]]:
    """``(min, opt, max)`` shape of every ``(batch, channels, *spatial)`` input.

    Dynamic axes take the profile's range; static axes keep their exported size, and a profile
    that asks for another size there is a :class:`ConfigError` (export with dynamic axes).
    """
    out = {}
    for name, dims in inputs.items():
        if len(dims) != 2 + len(profile.opt_tile):
            raise ConfigError(
                f"input {name!r} has {len(dims)} dims {dims}; a {len(profile.opt_tile)}D tile needs "
                f"(batch, channels, {', '.join('ZYX'[3 - len(profile.opt_tile) :])})"
            )
        if not isinstance(dims[1], int) or dims[1] < 1:
            raise ConfigError(f"input {name!r}: the channel axis must be static, got {dims[1]!r}")
        ranges = [(profile.min_batch, profile.opt_batch, profile.max_batch), (dims[1],) * 3]
        ranges += list(zip(profile.min_tile, profile.opt_tile, profile.max_tile))
        shape = []
        for axis, (dim, rng) in enumerate(zip(dims, ranges)):
            if isinstance(dim, int) and dim > 0:
                if axis != 1 and set(rng) != {dim}:
                    what = "batch" if axis == 0 else f"spatial axis {axis - 2}"
                    raise ConfigError(
                        f"input {name!r} was exported with a static {what} of {dim}, but the TensorRT "
                        f"profile asks for {rng[0]}..{rng[2]}: set export.dynamic_batch/dynamic_spatial "
                        "or give engine.tensorrt that size"
                    )
                shape.append((dim, dim, dim))
            else:
                shape.append(tuple(rng))
        out[name] = tuple(tuple(int(s[i]) for s in shape) for i in range(3))
    return out


# -- the builder -----------------------------------------------------------------------------
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


def _atomic_write(path: Path, data) -> None:
    tmp = path.with_name(f".partial_{path.name}")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    precision: str,
    settings,
    shapes: dict[str, tuple[Shape, Shape, Shape]],
    timing_cache: Path | None = None,
    device_name: str = "",
) -> Path:
    """Parse ``onnx_path``, build a ``precision`` engine for ``shapes`` and write it to ``engine_path``.

    ``settings`` is the ``engine.tensorrt`` section. Writes ``engine_path`` and, beside it, a
    ``.json`` with how it was built; updates ``timing_cache``. The current CUDA device is used
    (see :func:`on_device`).
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
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)

    log.info(
        "building TensorRT %s engine from %s (%s typing)", precision, onnx_path.name, "strong" if strong else "weak"
    )
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(
            f"TensorRT could not build the {precision} engine from {onnx_path}: "
            + (" | ".join(logger.errors[-5:]) or "no reason given (raise the TensorRT log level)")
        )
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(engine_path, serialized)
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(timing_cache, config.get_timing_cache().serialize())
    info = {
        "tensorrt": trt.__version__,
        "device": device_name,
        "precision": precision,
        "float_layers": float_layers,
        "typing": "strong" if strong else "weak",
        "workspace_mb": settings.workspace_mb,
        "source": onnx_path.name,
        "profile": {name: [list(s) for s in mm] for name, mm in shapes.items()},
    }
    engine_path.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
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
        if settings.fp16_fallback:
            config.set_flag(trt.BuilderFlag.FP16)
            return "fp16"
        _no_tf32(trt, config)
        return "fp32"
    config.set_flag(trt.BuilderFlag.FP16)
    return "fp16"


def _no_tf32(trt, config) -> None:
    """Keep fp32 layers in true fp32: TensorRT allows TF32 (10-bit mantissa) by default."""
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)


# -- the pipeline step ------------------------------------------------------------------------
def build_tensorrt_variant(
    variant: str, config, parser, work: Path, onnx_path: Path, calib: list[np.ndarray], validation=None
) -> Path:
    """``tensorrt/model_<precision>.engine`` for ``variant`` (``tensorrt:int8`` or ``tensorrt:fp16``).

    With ``quantize.onnxruntime.max_accuracy_drop`` and ``validation``, the QDQ model keeps the
    layers ONNX Runtime's accuracy control ranks most sensitive in float (the ranking is run
    on the QDQ model in ONNX Runtime on the CPU, before TensorRT builds the engine).

    Checks the profile, TensorRT and the GPU first (failing before any work), then makes the
    symmetric S8 QDQ ONNX for int8 (``tensorrt/model_int8.onnx``, its ranges in
    ``tensorrt/ort_calibration.json``) and builds the engine on ``engine.tensorrt.device``.
    """
    from efficientbioai.registry import QUANTIZERS

    precision = variant.split(":")[1]
    settings = config.engine.tensorrt
    shapes = profile_shapes(onnx_inputs(onnx_path), profile_from_config(config))
    require_tensorrt(variant)
    require_cuda(settings.device, variant)
    out_dir = work / "tensorrt"
    source, quantization = onnx_path, None
    if precision == "int8":
        from efficientbioai.compression.quantize_trt import check_symmetric_s8

        quantizer = QUANTIZERS.get("tensorrt")(config.quantize.onnxruntime, parser.keep_float_nodes(), validation)
        source = quantizer.apply(onnx_path, calib, out_dir)
        qdq = check_symmetric_s8(source)
        s = quantizer.settings
        quantization = {
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
        engine = build_engine(
            source, out_dir / f"model_{precision}.engine", precision, settings, shapes, cache, device_name
        )
    if quantization is not None:  # how the QDQ model was made, beside how the engine was built
        info_path = engine.with_suffix(".json")
        info = json.loads(info_path.read_text())
        info_path.write_text(json.dumps({**info, "quantization": quantization}, indent=2) + "\n")
    return engine
