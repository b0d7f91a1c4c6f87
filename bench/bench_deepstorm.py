"""Benchmark Deep-STORM reconstruction: ms/frame and NMSE/PSNR per engine and precision.

Compresses the shipped U-Net (graph with the on-device frame sum), then in one inference run
(a fresh process, torch first) measures, for torch fp32 (eager), ONNX Runtime fp32/int8 and
OpenVINO fp32/int8: the engine latency of a batch of frames (warm-up, then median and p90 of
``--runs`` calls; ms/frame = batch median ÷ batch size), end-to-end frames/s over the simulated
test stack (reading, padding, summation included), and NMSE / PSNR against the ground truth.
A second, per-frame export (no sum in the graph: every frame's 512×512 prediction is copied
back and summed on the host) shows what the in-graph summation saves. Last, torch fp32,
OpenVINO fp32 and int8 are timed round-robin (call after call, same load): on a shared machine
these are the ratios to quote.

    .venv/bin/python bench/bench_deepstorm.py [--runs 50] [--frames 361] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._common import fresh_experiment, interleaved_latency  # noqa: E402
from efficientbioai.config import load_config  # noqa: E402
from efficientbioai.evaluation.report import describe_machine  # noqa: E402
from efficientbioai.manifest import machine  # noqa: E402

VARIANTS = ["torch:fp32", "onnxruntime:fp32", "onnxruntime:int8", "openvino:fp32", "openvino:int8"]


def _experiment(cfg, out: Path, name: str, sum_frames: bool, variants: list[str]) -> dict:
    cfg = cfg.model_copy(deep=True)
    cfg.model.params = {**cfg.model.params, "sum_frames": sum_frames}
    cfg.report.compare = variants
    return fresh_experiment(cfg, out, name)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--frames", type=int, default=361)
    ap.add_argument("--threads", type=int, default=None, help="engine threads (default: all cores)")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "deepstorm.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(args.config)
    cfg.report.latency.runs = args.runs
    cfg.report.energy.enabled = False
    cfg.report.write_outputs = "none"
    cfg.engine.threads = args.threads
    cfg.simulation.test.frames = args.frames
    report = _experiment(cfg, args.out, "bench_deepstorm", True, VARIANTS)
    per_frame = _experiment(cfg, args.out, "bench_deepstorm_per_frame", False, ["torch:fp32", "openvino:int8"])
    rows = {r["variant"]: r for r in report["variants"]}
    ref = rows["torch:fp32"]
    bs = ref["latency"]["batch_size"]
    t = Table(title=f"Deep-STORM U-Net ({report['model']['parameters']:,} parameters), {describe_machine(machine())}")
    for h in ["variant", "ms/frame", "p90", "× torch", "× OV fp32", "frames/s e2e", "× torch", "NMSE %", "PSNR dB"]:
        t.add_column(h, justify="right")
    ov = rows["openvino:fp32"]["latency"]["median_ms"]
    for v in VARIANTS:
        r, g = rows[v], rows[v]["vs_ground_truth"]
        lat = r["latency"]
        t.add_row(
            v,
            f"{lat['median_ms'] / bs:.2f}",
            f"{lat['p90_ms'] / bs:.2f}",
            f"{ref['latency']['median_ms'] / lat['median_ms']:.2f}",
            f"{ov / lat['median_ms']:.2f}",
            f"{r['units_per_s']:.1f}",
            f"{r['units_per_s'] / ref['units_per_s']:.2f}",
            f"{g['nmse']:.2f}",
            f"{g['psnr']:.2f}",
        )
    t.caption = (
        f"batch {bs} frames of {report['model']['tile'][2:]}, threads {ref['engine']['threads']}, "
        f"{ref['latency']['warmup']} warm-up + {ref['latency']['runs']} timed calls; "
        f"{int(ref['units'])} test frames never used for training"
    )
    console = Console(width=160)
    console.print(t)
    summed = rows["openvino:int8"]
    single = {r["variant"]: r for r in per_frame["variants"]}["openvino:int8"]
    console.print(
        f"openvino:int8 end to end: {summed['units_per_s']:.1f} frames/s with the sum in the graph (one "
        f"image per batch leaves the engine) vs {single['units_per_s']:.1f} frames/s per-frame outputs summed "
        f"on the host ({summed['units_per_s'] / single['units_per_s']:.2f}×, separate runs)"
    )
    names = ["torch:fp32", "openvino:fp32", "openvino:int8"]
    console.print(interleaved_latency(args.out / "bench_deepstorm" / "deploy.yaml", names, args.runs, bs))


if __name__ == "__main__":
    main()
