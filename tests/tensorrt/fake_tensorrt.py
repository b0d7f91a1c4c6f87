"""A FAKE ``tensorrt`` module for tests on machines without TensorRT or a GPU.

It is not TensorRT. It has the slice of the TensorRT 10 Python API our builder and
``TRTModule`` use, records every call in ``module.calls``, and checks what real TensorRT
would reject (a profile missing for an input, a profile that contradicts a static dimension,
an input shape outside the profile). Its "engine" is JSON describing the network and profile;
executing it reads the input from the bound address and writes ``2 * input`` to the bound
output address, so the address and shape plumbing is exercised for real (with host memory).
"""

from __future__ import annotations

import ctypes
import enum
import importlib.machinery
import json
import types

import numpy as np

MAGIC = b"FAKETRT1"


def make_fake_tensorrt(version: str = "10.8.0", strong_only: bool = False) -> types.ModuleType:
    """A fresh fake module; ``strong_only`` mimics TensorRT 11 (no INT8/FP16 builder flags)."""
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)  # find_spec() callers (torch) need one
    trt.__version__ = version
    trt.__fake__ = True
    calls: list[tuple] = []
    trt.calls = calls

    flags = ["TF32", "REFIT"] if strong_only else ["FP16", "INT8", "TF32"]
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", flags)
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", {"STRONGLY_TYPED": 5})
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", ["WORKSPACE"])
    trt.DataType = enum.IntEnum("DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL"])
    trt.TensorIOMode = enum.IntEnum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])

    class ILogger:
        Severity = enum.IntEnum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])

        def __init__(self) -> None:
            pass

    class Logger(ILogger):
        WARNING = ILogger.Severity.WARNING

        def __init__(self, severity=None) -> None:
            super().__init__()
            self.severity = severity

        def log(self, severity, msg):
            pass

    class Tensor:
        def __init__(self, name: str, shape: list[int]) -> None:
            self.name = name
            self.shape = shape

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.inputs: list[Tensor] = []
            self.outputs: list[Tensor] = []
            self.qdq_nodes = 0

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        def get_input(self, i: int) -> Tensor:
            return self.inputs[i]

    class OnnxParser:
        def __init__(self, network: Network, logger) -> None:
            self.network = network
            self.errors: list[str] = []

        def parse_from_file(self, path: str) -> bool:
            import onnx

            calls.append(("parse_from_file", path))
            try:
                graph = onnx.load(path, load_external_data=False).graph
            except Exception as exc:
                self.errors.append(f"cannot read {path}: {exc}")
                return False
            weights = {i.name for i in graph.initializer}

            def dims(v):
                return [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]

            self.network.inputs = [Tensor(v.name, dims(v)) for v in graph.input if v.name not in weights]
            self.network.outputs = [Tensor(v.name, dims(v)) for v in graph.output]
            self.network.qdq_nodes = sum(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node)
            return True

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> str:
            return self.errors[i]

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = bytes(data)

        def serialize(self) -> bytes:
            return self.data + b"+timings"

    class OptimizationProfile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple] = {}

        def set_shape(self, name, min, opt, max):  # noqa: A002 - TensorRT's argument names
            calls.append(("set_shape", name, tuple(min), tuple(opt), tuple(max)))
            self.shapes[name] = (tuple(min), tuple(opt), tuple(max))

    class BuilderConfig:
        def __init__(self) -> None:
            self.flags = {trt.BuilderFlag.TF32}  # TensorRT allows TF32 by default
            self.pools: dict = {}
            self.profiles: list[OptimizationProfile] = []
            self.cache: TimingCache | None = None

        def set_memory_pool_limit(self, pool, size: int) -> None:
            calls.append(("set_memory_pool_limit", pool.name, size))
            self.pools[pool] = size

        def set_flag(self, flag) -> None:
            calls.append(("set_flag", flag.name))
            self.flags.add(flag)

        def clear_flag(self, flag) -> None:
            calls.append(("clear_flag", flag.name))
            self.flags.discard(flag)

        def get_flag(self, flag) -> bool:
            return flag in self.flags

        def add_optimization_profile(self, profile: OptimizationProfile) -> int:
            calls.append(("add_optimization_profile",))
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data: bytes) -> TimingCache:
            calls.append(("create_timing_cache", bytes(data)))
            return TimingCache(data)

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            calls.append(("set_timing_cache", ignore_mismatch))
            self.cache = cache
            return True

        def get_timing_cache(self) -> TimingCache | None:
            return self.cache

    class Builder:
        def __init__(self, logger) -> None:
            calls.append(("Builder", isinstance(logger, ILogger)))
            self.logger = logger

        def create_network(self, flags: int = 0) -> Network:
            calls.append(("create_network", flags))
            return Network(flags)

        def create_builder_config(self) -> BuilderConfig:
            return BuilderConfig()

        def create_optimization_profile(self) -> OptimizationProfile:
            return OptimizationProfile()

        def build_serialized_network(self, network: Network, config: BuilderConfig):
            calls.append(("build_serialized_network",))
            strong = bool(network.flags & (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
            if network.qdq_nodes and not strong and trt.BuilderFlag.INT8 not in config.flags:
                self.logger.log(ILogger.Severity.ERROR, "Q/DQ layers in a weakly typed network need BuilderFlag.INT8")
                return None
            if len(config.profiles) != 1:
                self.logger.log(ILogger.Severity.ERROR, "need exactly one optimization profile")
                return None
            profile = config.profiles[0]
            tensors = {}
            for t in network.inputs:
                if t.name not in profile.shapes:
                    self.logger.log(ILogger.Severity.ERROR, f"no profile shape for input {t.name}")
                    return None
                lo, opt, hi = profile.shapes[t.name]
                for d, a, b, c in zip(t.shape, lo, opt, hi):
                    if not (a <= b <= c) or (d >= 0 and not a == b == c == d):
                        self.logger.log(ILogger.Severity.ERROR, f"bad profile for {t.name}: {profile.shapes}")
                        return None
                tensors[t.name] = {"mode": "INPUT", "shape": t.shape, "profile": [lo, opt, hi]}
            for t in network.outputs:
                tensors[t.name] = {"mode": "OUTPUT", "shape": t.shape}
            plan = {
                "tensors": tensors,
                "flags": sorted(f.name for f in config.flags),
                "strong": strong,
                "workspace": config.pools.get(trt.MemoryPoolType.WORKSPACE),
            }
            return MAGIC + json.dumps(plan).encode()

    class ExecutionContext:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}

        def set_input_shape(self, name: str, shape) -> bool:
            shape = tuple(shape)
            calls.append(("set_input_shape", name, shape))
            lo, _, hi = self.engine.tensors[name]["profile"]
            if len(shape) != len(lo) or any(not a <= s <= b for a, s, b in zip(lo, shape, hi)):
                return False
            self.shapes[name] = shape
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            info = self.engine.tensors[name]
            if info["mode"] == "INPUT":
                return self.shapes[name]
            (x,) = self.shapes.values()  # image-to-image: batch and spatial of the input
            return (x[0], info["shape"][1], *x[2:])

        def set_tensor_address(self, name: str, address: int) -> bool:
            calls.append(("set_tensor_address", name))
            self.addresses[name] = int(address)
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            calls.append(("execute_async_v3", stream_handle))
            (name,) = self.shapes
            x = _view(self.addresses[name], self.shapes[name])
            for out, info in self.engine.tensors.items():
                if info["mode"] == "OUTPUT":
                    _view(self.addresses[out], self.get_tensor_shape(out))[...] = 2 * x
            return True

    class Engine:
        def __init__(self, plan: dict) -> None:
            self.tensors = plan["tensors"]
            self.plan = plan
            self.names = list(self.tensors)

        @property
        def num_io_tensors(self) -> int:
            return len(self.names)

        def get_tensor_name(self, i: int) -> str:
            return self.names[i]

        def get_tensor_mode(self, name: str):
            return trt.TensorIOMode[self.tensors[name]["mode"]]

        def get_tensor_dtype(self, name: str):
            return trt.DataType.FLOAT

        def get_tensor_shape(self, name: str) -> list[int]:
            return list(self.tensors[name]["shape"])

        def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[list[int]]:
            return [list(s) for s in self.tensors[name]["profile"]]

        def create_execution_context(self) -> ExecutionContext:
            calls.append(("create_execution_context",))
            return ExecutionContext(self)

    class Runtime:
        def __init__(self, logger) -> None:
            calls.append(("Runtime",))

        def deserialize_cuda_engine(self, data: bytes):
            calls.append(("deserialize_cuda_engine", len(data)))
            if not bytes(data).startswith(MAGIC):
                return None
            return Engine(json.loads(bytes(data)[len(MAGIC) :]))

    for obj in (ILogger, Logger, OnnxParser, Builder, Runtime):
        setattr(trt, obj.__name__, obj)
    return trt


def _view(address: int, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 array of ``shape`` at a host ``address`` (the fake's stand-in for device memory)."""
    n = int(np.prod(shape))
    buf = (ctypes.c_float * n).from_address(address)
    return np.ctypeslib.as_array(buf).reshape(shape)
