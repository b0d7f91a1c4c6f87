"""``TRTModule``: a serialized TensorRT engine on an NVIDIA GPU (TensorRT 10+ named-tensor API).

Device memory and the stream come from ``torch.cuda`` (torch is already a dependency; its
caching allocator makes a per-call allocation at a repeated shape free). ``tensorrt`` and
``torch.cuda`` are touched only when an engine is created: without them the constructor raises
:class:`BackendUnavailableError` naming what is missing and what to use instead.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from efficientbioai.engines.base import BaseInfer, require_file
from efficientbioai.engines.tensorrt_support import require_cuda, require_tensorrt
from efficientbioai.errors import ArtefactError, InputError
from efficientbioai.registry import register_engine

#: TensorRT data type name → torch dtype name.
_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "UINT8": "uint8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
}


class CudaDevice:
    """Device memory and one CUDA stream, from ``torch.cuda`` (the allocator ``TRTModule`` uses)."""

    def __init__(self, index: int, what: str = "TensorRT") -> None:
        self.torch = torch = require_cuda(index, what)
        self.device = torch.device("cuda", index)
        self.name = torch.cuda.get_device_name(index)
        self.stream = torch.cuda.Stream(device=self.device)
        self.stream_handle = self.stream.cuda_stream

    def current(self):
        """Context: this device is current (TensorRT deserialises onto the current device)."""
        return self.torch.cuda.device(self.device)

    @contextmanager
    def streaming(self):
        """Context: torch's copies and allocations go on our stream, ordered with TensorRT's work
        (and after whatever the caller queued on the current stream, e.g. a GPU input)."""
        self.stream.wait_stream(self.torch.cuda.current_stream(self.device))
        with self.torch.cuda.stream(self.stream):
            yield

    def to_device(self, x, dtype: str):
        t = x if isinstance(x, self.torch.Tensor) else self.torch.from_numpy(x)
        return t.to(self.device, getattr(self.torch, dtype), non_blocking=True).contiguous()

    def empty(self, shape: tuple[int, ...], dtype: str):
        return self.torch.empty(shape, dtype=getattr(self.torch, dtype), device=self.device)

    def to_host(self, t) -> np.ndarray:
        return t.float().cpu().numpy() if t.dtype in (self.torch.float16, self.torch.bfloat16) else t.cpu().numpy()

    def synchronize(self) -> None:
        self.stream.synchronize()


@register_engine("tensorrt")
class TRTModule(BaseInfer):
    """A deserialized TensorRT engine with one execution context and its own CUDA stream."""

    name = "tensorrt"
    keeps_outputs_on_device = True
    #: Builds the device wrapper; a test swaps it for a host stand-in to drive a fake ``tensorrt``.
    device_factory = CudaDevice

    def __init__(self, path: Path, precision: str = "int8", threads: int | None = None, device: int = 0) -> None:
        super().__init__(precision, threads)
        what = f"tensorrt:{precision}"
        trt = require_tensorrt(what)
        path = require_file(path, f"TensorRT engine for {what}")
        self.build_info = _build_info(path)
        self.gpu = type(self).device_factory(device, what)  # a class (or a plain function), never bound
        self.device_index = device
        self.device = f"cuda:{device}"
        built_with = self.build_info.get("tensorrt")
        if built_with and built_with != trt.__version__:
            raise ArtefactError(
                f"{path} was built with TensorRT {built_with} but this is TensorRT {trt.__version__}; "
                "engines load only in the version that built them: run compress.py again on this machine"
            )
        self.logger = trt.Logger(trt.Logger.WARNING)
        with self.gpu.current():
            self.runtime = trt.Runtime(self.logger)
            self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
            if self.engine is None:
                raise ArtefactError(
                    f"{path}: TensorRT {trt.__version__} cannot load this engine on {self.gpu.name} "
                    f"(built on {self.build_info.get('device') or 'an unknown GPU'}); an engine runs only "
                    "on the GPU model and TensorRT version it was built with: run compress.py again here"
                )
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise ArtefactError(f"{path}: TRTModule runs engines with one input, this one has {inputs}")
        self.input_name = inputs[0]
        self.output_names = [n for n in names if n not in inputs]
        self.dtypes = {n: _torch_dtype(self.engine.get_tensor_dtype(n)) for n in names}
        self.input_rank = len(self.engine.get_tensor_shape(self.input_name))
        self.profile = tuple(tuple(int(d) for d in s) for s in self.engine.get_tensor_profile_shape(self.input_name, 0))
        self._pending = None  # the last call's tensors, alive until the stream is synchronised

    def run_device(self, x) -> list:
        """Queue one batch (numpy or a torch tensor, host or GPU); returns the output tensors on the GPU.

        The work is asynchronous on this engine's stream: call :meth:`sync` before reading them.
        """
        shape = tuple(int(s) for s in x.shape)
        lo, _, hi = self.profile
        if len(shape) != len(lo) or any(not a <= s <= b for a, s, b in zip(lo, shape, hi)):
            raise InputError(
                f"tensorrt: batch shape {shape} is outside the engine's profile {lo}..{hi}; rebuild with a "
                "wider engine.tensorrt min/max batch or tile (compress.py), or feed tiles inside it"
            )
        with self.gpu.streaming():
            xd = self.gpu.to_device(x, self.dtypes[self.input_name])
            if not self.context.set_input_shape(self.input_name, shape):
                raise InputError(f"tensorrt: the engine rejects input shape {shape} (profile {self.profile})")
            self.context.set_tensor_address(self.input_name, xd.data_ptr())
            outs = []
            for name in self.output_names:
                out_shape = tuple(int(d) for d in self.context.get_tensor_shape(name))
                if any(d < 0 for d in out_shape):
                    raise ArtefactError(f"tensorrt: output {name!r} has a data-dependent shape {out_shape}")
                out = self.gpu.empty(out_shape, self.dtypes[name])
                self.context.set_tensor_address(name, out.data_ptr())
                outs.append(out)
            if not self.context.execute_async_v3(self.gpu.stream_handle):
                raise RuntimeError(f"tensorrt: execute_async_v3 failed for input shape {shape}")
        self._pending = (xd, outs)
        return outs

    def device_outputs(self, x) -> list:
        outs = self.run_device(x)
        self.gpu.synchronize()  # the stream's work is done before torch ops read the tensors
        return outs

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        outs = self.run_device(x)
        self.sync()  # TensorRT's work is done before anything is read or timed
        with self.gpu.streaming():
            return [self.gpu.to_host(o) for o in outs]

    def sync(self) -> None:
        """Wait until everything queued on this engine's stream has finished."""
        self.gpu.synchronize()
        self._pending = None

    def describe(self) -> dict:
        lo, opt, hi = self.profile
        return {
            **super().describe(),
            "device": self.gpu.name,
            "device_index": self.device_index,
            "profile": {"min": list(lo), "opt": list(opt), "max": list(hi)},
            "build": self.build_info,
        }


def _torch_dtype(trt_dtype) -> str:
    name = getattr(trt_dtype, "name", str(trt_dtype).rsplit(".", 1)[-1])
    if name not in _DTYPES:
        raise ArtefactError(f"tensorrt: tensors of type {name} are not supported by TRTModule")
    return _DTYPES[name]


def _build_info(engine_path: Path) -> dict:
    """What ``convert_tensorrt.build_engine`` recorded beside the engine (empty if absent)."""
    try:
        return json.loads(engine_path.with_suffix(".json").read_text())
    except (OSError, ValueError):  # absent (FileNotFoundError), unreadable or not JSON
        return {}
