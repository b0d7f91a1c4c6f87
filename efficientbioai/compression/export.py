"""torch → ONNX export with dynamic batch and spatial axes, verified against torch.

Nothing downstream (quantization, OpenVINO, TensorRT) uses an ONNX file before
:func:`verify_onnx` has run it in ONNX Runtime and found it equal to torch within the rounding
float32 arithmetic itself causes on that model (measured against a float64 run).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from efficientbioai.compression.numerics import as_tensors, derived_tolerance, float32_rounding, relative_to_peak
from efficientbioai.engines.ort_engine import ORTModule
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


@dataclass(frozen=True)
class Verification:
    """What :func:`verify_onnx` measured, all relative to the output's peak."""

    error: float  #: ONNX Runtime vs torch float32
    noise: float | None  #: torch float32 vs float64: the rounding float32 alone causes (None: not measured)
    tolerance: float  #: the limit ``error`` was held to

    def record(self) -> dict:
        return {"max_relative_error": self.error, "float32_noise": self.noise, "tolerance": self.tolerance}


def verify_onnx(
    model: nn.Module,
    path: str | Path,
    inputs: list[torch.Tensor],
    tolerance: float | None = None,
    safety: float = 10.0,
) -> Verification:
    """Run ``path`` in ONNX Runtime on each input and compare with torch.

    The error is ``max|onnx − torch| / max|torch|`` over all outputs and inputs. With
    ``tolerance=None`` the limit comes from the model itself: ``safety ×`` the float32 rounding
    noise of torch on the same inputs (:func:`~efficientbioai.compression.numerics.float32_rounding`),
    with a floor of a few ulps.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Graph optimisations fuse ops and reorder float sums; verify the exported graph itself.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    error = 0.0
    model = model.eval()
    for x in inputs:
        with torch.no_grad():
            refs = as_tensors(model(x))
        outs = session.run(None, {name: x.numpy()})
        for r, o in zip(refs, outs):
            r = r.numpy()
            if r.shape != o.shape:
                raise ExportError(f"{path}: ONNX output shape {o.shape} differs from torch {r.shape}")
            error = max(error, relative_to_peak(o, r))
    if not np.isfinite(error):
        raise ExportError(
            f"{path}: the model's output is not finite (NaN or Inf) on the calibration inputs; "
            "check the checkpoint's weights and the input normalisation"
        )
    noise = None
    if tolerance is None:
        noise = _noise(model, inputs)
        tolerance = derived_tolerance(noise, safety) if noise is not None else FALLBACK_TOLERANCE
    result = Verification(error, noise, tolerance)
    if error > tolerance:
        raise ExportError(f"{path}: {_failure(result, safety)}")
    log.info("verified %s against torch: relative error %.2e (limit %.2e)", path, error, tolerance)
    return result


#: Limit used when the model cannot run in float64 to measure its own rounding noise.
FALLBACK_TOLERANCE = 1e-4


def _noise(model: nn.Module, inputs: list[torch.Tensor]) -> float | None:
    try:
        return float32_rounding(model, inputs)
    except (RuntimeError, TypeError) as exc:
        log.warning(
            "cannot run %s in float64 to measure its float32 rounding (%s); verifying the ONNX export "
            "against a fixed relative tolerance of %g (set export.verify_tolerance to choose another)",
            type(model).__name__,
            str(exc).splitlines()[0][:200],
            FALLBACK_TOLERANCE,
        )
        return None


def _failure(v: Verification, safety: float) -> str:
    said = f"ONNX Runtime differs from torch by {v.error:.2e} (relative to the output's peak)"
    if v.noise is None:
        return f"{said}, above export.verify_tolerance={v.tolerance:g}"
    return (
        f"{said}; float32 rounding alone moves this output by {v.noise:.2e} (torch float32 vs float64 on "
        f"the same inputs), so the limit was {safety:g} × that = {v.tolerance:.2e}. A difference this far "
        "above rounding means the exported graph computes something else; if you have checked it and "
        "accept it, raise export.verify_safety or set export.verify_tolerance to a number"
    )


def check_test_tensors(path: Path, pairs: list, rtol: float, atol: float, per_million: int) -> dict:
    """The exported graph on a model's own test tensors (a bioimage.io package's), within its tolerance:
    at most ``per_million`` elements off by more than ``atol + rtol × |expected|``."""
    engine, worst, off = ORTModule(path), 0.0, 0.0
    for x, expected in pairs:
        out = engine.run(engine.prepare(x))[0]
        if out.shape != expected.shape:
            raise ExportError(f"{path}: output {out.shape} on the test input, the test output is {expected.shape}")
        diff = np.abs(out - expected)
        worst = max(worst, float(diff.max()))
        off = max(off, float((diff > atol + rtol * np.abs(expected)).mean() * 1e6))
    if off > per_million:
        raise ExportError(
            f"{path}: the export does not reproduce the model's test output: {off:.0f} elements per million "
            f"differ by more than {atol:g} + {rtol:g}×|expected| (largest {worst:.3g}); {per_million} allowed"
        )
    return {"test_tensors": len(pairs), "test_max_abs_diff": worst, "test_off_per_million": off}
