"""ONNX → OpenVINO IR (fp32; bf16 is a run-time hint on the same IR).

The TensorRT engine builder lives in ``convert_tensorrt.py`` (imported only when asked for).
"""

from __future__ import annotations

import os
from pathlib import Path


def read_onnx(onnx_path: Path):
    """An ``openvino.Model`` from an ONNX file, through the C++ ONNX frontend (no telemetry)."""
    import openvino as ov

    return ov.Core().read_model(str(onnx_path))


def save_ir(model, xml_path: Path) -> Path:
    """Save ``model`` as IR (``.xml`` + ``.bin``), weights kept in fp32, written atomically."""
    import openvino as ov

    xml_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = xml_path.with_name(f".partial_{xml_path.name}")
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    os.replace(tmp.with_suffix(".bin"), xml_path.with_suffix(".bin"))
    os.replace(tmp, xml_path)
    return xml_path


def onnx_to_openvino(onnx_path: Path, out_dir: Path) -> Path:
    """``openvino/model_fp32.xml`` from the verified ONNX file."""
    return save_ir(read_onnx(onnx_path), out_dir / "openvino" / "model_fp32.xml")
