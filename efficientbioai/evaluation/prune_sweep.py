"""Pruning sensitivity sweep: accuracy, latency and size against the pruning ratio.

    efficientbioai prune-sweep --config configs/monai_unet_denoise2d.yaml --importance l1

For each ratio (default 0 → 0.7) the model is pruned (and optionally fine-tuned), exported to
ONNX, run through an engine (OpenVINO fp32 by default, so int8 effects do not mix in) on the
config's evaluation data, and scored with the task's own metric against ground truth and
against the unpruned model. The table lets a user pick the ratio where accuracy starts to
fall — the EfficientBioAI paper chose L1 at 50% this way.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from efficientbioai.compression.export import export_onnx
from efficientbioai.compression.prune import prune_and_fine_tune
from efficientbioai.config import load_config
from efficientbioai.engines.torch_engine import TorchModule
from efficientbioai.errors import InputError
from efficientbioai.evaluation.measure import measure_latency
from efficientbioai.manifest import flop_count, parameter_count
from efficientbioai.parsers.base import create_parser
from efficientbioai.registry import ENGINES, TASKS

log = logging.getLogger(__name__)

DEFAULT_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def sensitivity_sweep(
    config_path: str | Path,
    ratios: tuple[float, ...] = DEFAULT_RATIOS,
    importance: str | None = None,
    fine_tune_steps: int = 0,
    engine: str = "openvino",
    max_samples: int = 4,
) -> list[dict]:
    """One row per ratio: parameters, GFLOPs, ONNX MB, latency ms, metric vs truth and vs unpruned."""
    cfg = load_config(config_path)
    parser = create_parser(cfg)
    model = parser.load_model()
    example = parser.example_input()
    task = TASKS.get(parser.task_name)(cfg, parser)
    samples = list(task.samples())[:max_samples]
    if not samples:
        raise InputError("no evaluation samples: set data.evaluation or inference.input")
    metric = task.primary_metric
    threads = cfg.engine.threads or os.cpu_count() or 1
    reference = [task.predict(TorchModule(model, "fp32", threads), s) for s in samples]
    batch = task.example_batch(samples[0], cfg.report.latency.batch_size or cfg.inference.batch_size)
    settings = cfg.prune.model_copy(deep=True)
    settings.enabled, settings.flops_reduction = True, None  # the sweep sets the ratio itself
    if importance:
        settings.importance = importance
    settings.fine_tune.steps = fine_tune_steps
    settings.fine_tune.mode = settings.fine_tune.mode if fine_tune_steps else "none"
    rows = []
    for ratio in ratios:
        settings.ratio = ratio
        pruned = model if ratio == 0 else prune_and_fine_tune(model, parser, settings, example)[0]
        with tempfile.TemporaryDirectory(prefix="sweep_") as tmp:
            onnx = export_onnx(
                pruned,
                example,
                Path(tmp) / "model.onnx",
                parser.input_names,
                parser.output_names,
                parser.dynamic_axes(),
                cfg.export.opset,
                cfg.export.exporter,
            )
            runner = ENGINES.get(engine)(onnx, "fp32", threads)
            lat = measure_latency(runner, batch, cfg.report.latency.warmup, cfg.report.latency.runs)
            outputs = [task.predict(runner, s) for s in samples]
            size = onnx.stat().st_size + sum(f.stat().st_size for f in Path(tmp).glob("*.data"))
            del runner
        truth = [task.score(o, s.target)[metric] for o, s in zip(outputs, samples) if s.target is not None]
        rows.append(
            {
                "ratio": ratio,
                "importance": settings.importance,
                "parameters": parameter_count(pruned),
                "gflops_per_tile": flop_count(pruned, example) / 1e9,
                "onnx_mb": size / 1e6,
                "latency_ms": lat.median_ms,
                f"{metric}_vs_truth": float(np.mean(truth)) if truth else None,
                f"{metric}_vs_unpruned": float(np.mean([task.score(o, r)[metric] for o, r in zip(outputs, reference)])),
            }
        )
        log.info("ratio %.2f: %s", ratio, rows[-1])
    return rows
