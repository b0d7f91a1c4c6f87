"""What a compressed experiment records about itself: versions, hashes, sizes, counts."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from contextlib import suppress
from pathlib import Path

import torch
from torch import nn

_LIBRARIES = ("torch", "onnx", "onnxruntime", "openvino", "nncf", "monai", "numpy", "torch-pruning", "tensorrt")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a result depends on (missing ones left out)."""
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        with suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


#: The CPU features that decide which precision pays off (int8 needs VNNI or AMX to beat fp32).
ISA_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
#: Environment variables that cap the ISA the kernels use (oneDNN in torch and OpenVINO, ATen).
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def _cpuinfo() -> dict[str, str]:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def machine() -> dict:
    """CPU model, core count, the ISA features that matter for int8/bf16, and any ISA cap in force."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    caps = {k: os.environ[k] for k in ISA_CAPS if os.environ.get(k)}
    out = {
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "cores": os.cpu_count() or 1,
        "system": platform.system(),
        "isa": [f for f in ISA_FEATURES if f in flags],
    }
    if caps:
        out["isa_cap"] = caps
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def artefact_files(path: Path) -> list[Path]:
    """The files an artefact consists of (an OpenVINO ``.xml`` has its ``.bin``)."""
    files = [path]
    if path.suffix == ".xml" and path.with_suffix(".bin").exists():
        files.append(path.with_suffix(".bin"))
    return files


def artefact_size(path: Path) -> int:
    """Bytes on disk of an artefact, all its files together."""
    return sum(f.stat().st_size for f in artefact_files(path))


def parameter_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def flop_count(model: nn.Module, example: torch.Tensor) -> int:
    """Floating-point operations of one forward pass on ``example`` (2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(example)
    return int(counter.get_total_flops())


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write text or bytes (any buffer) under a temporary name, then rename: ``path`` never holds
    half a file."""
    tmp = path.with_name(f".{path.name}.partial")
    if isinstance(data, str):
        tmp.write_text(data)
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def write_json(path: Path, data: dict) -> Path:
    """Write JSON atomically."""
    return write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
