"""What building and running TensorRT engines both need: the library, a GPU, the profile.

``tensorrt`` and CUDA ``torch`` are imported only when asked for, so a machine without them
gets a :class:`BackendUnavailableError` saying what to use instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from efficientbioai.errors import BackendUnavailableError, ConfigError

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
    major = version.split(".")[0]
    if not major.isdecimal() or int(major) < 10:
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
    return Profile(min_batch, opt_batch, max_batch, min_tile, opt_tile, max_tile)


def onnx_inputs(onnx_path: Path) -> dict[str, list[int | str]]:
    """Graph inputs of an ONNX file: name → dims (an int, or the name of a dynamic axis)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    return {
        v.name: [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in v.type.tensor_type.shape.dim]
        for v in graph.input
        if v.name not in weights
    }


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
        for axis, (dim, rng) in enumerate(zip(dims, ranges)):
            if axis != 1 and isinstance(dim, int) and dim > 0 and set(rng) != {dim}:
                what = "batch" if axis == 0 else f"spatial axis {axis - 2}"
                raise ConfigError(
                    f"input {name!r} was exported with a static {what} of {dim}, but the TensorRT "
                    f"profile asks for {rng[0]}..{rng[2]}: set export.dynamic_batch/dynamic_spatial "
                    "or give engine.tensorrt that size"
                )
        # a static axis passed the check only where its range is (dim, dim, dim): ranges is the shape
        out[name] = tuple(tuple(int(r[i]) for r in ranges) for i in range(3))
    return out
