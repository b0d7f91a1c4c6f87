"""torch → ONNX export with dynamic batch and spatial axes, verified against torch.

Nothing downstream (quantization, OpenVINO, TensorRT) uses an ONNX file before
:func:`verify_onnx` has run it in ONNX Runtime and found it equal to torch within tolerance.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from efficientbioai.errors import ExportError

log = logging.getLogger(__name__)


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    input_names: tuple[str, ...] = ("input",),
    output_names: tuple[str, ...] = ("output",),
    dynamic_axes: dict[str, dict[int, str]] | None = None,
    opset: int = 17,
    exporter: str = "torchscript",
) -> Path:
    """Export ``model`` (eval mode) to ``path``.

    ``exporter="torchscript"`` is torch's tracing exporter (fast, the default);
    ``"dynamo"`` uses ``torch.export`` and needs every dynamic axis to be traceable as such.
    Any failure is re-raised as :class:`ExportError` naming the model and the cause.
    """
    path = Path(path)
    model = model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                spec = (dynamic_axes or {}).get(input_names[0])
                how = {
                    "dynamo": True,
                    "dynamic_shapes": ({i: torch.export.Dim.DYNAMIC for i in spec},) if spec else None,
                }
            else:
                how = {"dynamo": False, "dynamic_axes": dynamic_axes or {}, "do_constant_folding": True}
            torch.onnx.export(
                model,
                (example,),
                str(path),
                opset_version=opset,
                input_names=list(input_names),
                output_names=list(output_names),
                **how,
            )
    except Exception as exc:
        raise ExportError(
            f"cannot export {type(model).__name__} to ONNX with the {exporter} exporter: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:400]}. Models with data-dependent "
            "control flow need a parser that wraps or rewrites the offending part."
        ) from None
    log.info("exported %s to %s (opset %d)", type(model).__name__, path, opset)
    return path


def verify_onnx(
    model: nn.Module,
    path: str | Path,
    inputs: list[torch.Tensor],
    tolerance: float = 1e-5,
) -> float:
    """Run ``path`` in ONNX Runtime on each input and compare with torch.

    The error is ``max|onnx − torch| / max|torch|`` over all outputs and inputs; raises
    :class:`ExportError` if it exceeds ``tolerance``. Returns the worst error seen.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Graph optimisations fuse ops and reorder float sums; verify the exported graph itself.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    worst = 0.0
    model = model.eval()
    for x in inputs:
        with torch.no_grad():
            ref = model(x)
        refs = [ref] if isinstance(ref, torch.Tensor) else list(ref.values() if isinstance(ref, dict) else ref)
        outs = session.run(None, {name: x.numpy()})
        for r, o in zip(refs, outs):
            r = r.numpy()
            if r.shape != o.shape:
                raise ExportError(f"{path}: ONNX output shape {o.shape} differs from torch {r.shape}")
            scale = max(float(np.abs(r).max()), 1e-12)
            worst = max(worst, float(np.abs(o - r).max()) / scale)
    if worst > tolerance:
        raise ExportError(
            f"{path}: ONNX Runtime differs from torch by {worst:.2e} (relative to the output's "
            f"peak), above export.verify_tolerance={tolerance:g}"
        )
    log.info("verified %s against torch: relative error %.2e", path, worst)
    return worst
