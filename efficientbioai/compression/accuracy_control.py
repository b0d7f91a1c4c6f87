"""Accuracy-controlled int8 for ONNX QDQ models (ONNX Runtime, TensorRT), as NNCF does for OpenVINO.

1. Quantize everything and score int8 and fp32 on the validation split with the task metric.
2. If the drop is above ``max_drop``, rank the quantized nodes by sensitivity: for each one,
   quantize all *but* it and measure how far the output still is from fp32 (mean squared error
   relative to the fp32 output's power). The layer whose reverting leaves the smallest error is
   the most sensitive.
3. Keep layers in float in that order, re-scoring after each, until the drop is within budget.

Reverting a layer needs no new calibration: the calibrated ranges are cached, so each step is
one ``quantize_static`` graph rewrite and one validation pass. The ranking uses only the
validation split; it never sees evaluation data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from efficientbioai.compression.quantizer import Validation
from efficientbioai.engines.ort_engine import ORTModule

log = logging.getLogger(__name__)

#: Layers that carry the int8 arithmetic, and so the accuracy loss.
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass
class ControlResult:
    """What accuracy control measured (written beside the int8 model as ``*_accuracy.json``)."""

    metric_fp32: float
    metric_int8: float
    max_drop: float
    kept_float: list[str] = field(default_factory=list)
    ranking: list[str] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)

    @property
    def drop(self) -> float:
        return self.metric_fp32 - self.metric_int8

    @property
    def within(self) -> bool:
        return self.drop <= self.max_drop

    def record(self) -> dict:
        return {**asdict(self), "drop": self.drop, "within_budget": self.within}


def accuracy_record_path(model: Path) -> Path:
    """Where the accuracy-control record of an int8 ONNX model is written."""
    return model.with_name(f"{model.stem}_accuracy.json")


def quantized_nodes(int8_path: Path, exclude: list[str]) -> list[str]:
    """The nodes of a QDQ model that compute on dequantized int8 inputs (the candidates to keep in
    float), weighted layers first: they carry most of the int8 arithmetic and its error."""
    graph = onnx.load(str(int8_path), load_external_data=False).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    nodes = [
        n
        for n in graph.node
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
        and n.name not in exclude
        and any(i in dequantized for i in n.input)
    ]
    return [n.name for n in sorted(nodes, key=lambda n: n.op_type not in WEIGHTED_OPS)]


def _has_int8(path: Path) -> bool:
    return any(n.op_type == "DequantizeLinear" for n in onnx.load(str(path), load_external_data=False).graph.node)


def _runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    engine = ORTModule(path)  # the CPU session every onnxruntime variant runs in
    return lambda x: engine.run(engine.prepare(x))[0]


def _relative_error(run: Callable, references: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    errors = [np.mean((run(x) - r) ** 2) / max(float(np.mean(r**2)), 1e-30) for x, r in zip(inputs, references)]
    return float(np.mean(errors))


def control_accuracy(
    fp32_path: Path,
    quantize: Callable[[list[str]], Path],
    validation: Validation,
    max_drop: float,
    keep_float: list[str],
    max_ranked: int = 64,
) -> ControlResult:
    """Quantize with ``quantize(nodes_kept_in_float)`` until the metric drop is within ``max_drop``.

    ``quantize`` writes the int8 model for a list of node names to exclude and returns its path;
    the last call leaves the chosen model in place. ``keep_float`` (the parser's and the user's)
    are always excluded. Returns what was measured; ``within`` is false when the budget cannot be met
    with at least one node still quantized (the last is never reverted: that model would be fp32
    under an int8 name) or within the ``max_ranked`` most sensitive. The metric is higher-is-better
    (the tasks' tile metrics: Pearson, Dice).
    """
    fp32 = _runner(fp32_path)
    inputs = [x for x, _ in validation.pairs]
    metric_fp32 = validation.score(fp32)
    path = quantize(list(keep_float))
    result = ControlResult(metric_fp32, validation.score(_runner(path)), max_drop)
    log.info("int8 accuracy control: fp32 %.4f, int8 %.4f (budget −%g)", metric_fp32, result.metric_int8, max_drop)
    if result.within:
        return result
    references = [fp32(x) for x in inputs]
    candidates = quantized_nodes(path, keep_float)[:max_ranked]
    errors = {n: _relative_error(_runner(quantize([*keep_float, n])), references, inputs) for n in candidates}
    result.ranking = sorted(candidates, key=errors.__getitem__)
    kept: list[str] = []
    for name in result.ranking:
        path = quantize([*keep_float, *kept, name])
        if not _has_int8(path):  # every quantizable node in float: an fp32 model under an int8 name
            log.info("  %s is the last quantized node; it stays int8", name)
            quantize([*keep_float, *kept])
            break
        kept.append(name)
        result.metric_int8 = validation.score(_runner(path))
        result.steps.append({"kept_float": len(kept), "node": name, "metric": result.metric_int8})
        log.info("  %s kept in float: int8 %.4f (drop %.4f)", name, result.metric_int8, result.drop)
        if result.within:
            break
    result.kept_float = kept
    return result
