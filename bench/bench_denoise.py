"""Benchmark the bundled 2D and 3D MONAI denoisers across engines and precisions.

For each model: compress (export, ORT int8, OpenVINO IR and int8), then measure, in one run,
the median latency of one tile batch for torch fp32 (eager), ONNX Runtime fp32/int8 and
OpenVINO fp32/bf16/int8, the ratios against torch fp32 and against OpenVINO fp32, and Pearson
against ground truth on evaluation images never used for training or calibration.

    .venv/bin/python bench/bench_denoise.py [--runs 50] [--dims 2 3]

Targets from the issue are printed next to the numbers; they are measured, not asserted.
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

from bench._common import fresh_experiment  # noqa: E402
from efficientbioai.config import load_config  # noqa: E402
from efficientbioai.evaluation.report import describe_machine  # noqa: E402
from efficientbioai.manifest import machine  # noqa: E402

VARIANTS = ["torch:fp32", "onnxruntime:fp32", "onnxruntime:int8", "openvino:fp32", "openvino:bf16", "openvino:int8"]


def bench(dims: int, runs: int, out: Path) -> dict:
    config = ROOT / "configs" / f"monai_unet_denoise{dims}d.yaml"
    cfg = load_config(config)
    cfg.report.compare = VARIANTS
    cfg.report.latency.runs = runs
    cfg.report.energy.enabled = False
    return fresh_experiment(cfg, out, f"bench_den{dims}d")[0]


def table(report: dict, dims: int) -> Table:
    rows = {r["variant"]: r for r in report["variants"]}
    torch_ms = rows["torch:fp32"]["latency"]["median_ms"]
    ov_ms = rows["openvino:fp32"]["latency"]["median_ms"]
    ref_p = rows["torch:fp32"]["vs_ground_truth"]["pearson"]
    t = Table(title=f"{dims}D MONAI UNet denoiser, tile {report['model']['tile']}, {describe_machine(machine())}")
    for h in ["variant", "median ms", "p90 ms", "× vs torch fp32", "× vs OV fp32", "Pearson vs truth", "Δ vs fp32"]:
        t.add_column(h, justify="right")
    for v in VARIANTS:
        r = rows[v]
        ms = r["latency"]["median_ms"]
        p = r["vs_ground_truth"]["pearson"]
        t.add_row(
            v,
            f"{ms:.1f}",
            f"{r['latency']['p90_ms']:.1f}",
            f"{torch_ms / ms:.2f}",
            f"{ov_ms / ms:.2f}",
            f"{p:.4f}",
            f"{p - ref_p:+.4f}",
        )
    int8 = rows["openvino:int8"]
    t.caption = (
        f"targets: OV int8 ≥ 10× torch fp32 (measured {torch_ms / int8['latency']['median_ms']:.2f}×), "
        f"≥ 4× OV fp32 ({ov_ms / int8['latency']['median_ms']:.2f}×), Pearson within 0.01 of fp32 "
        f"({int8['vs_ground_truth']['pearson'] - ref_p:+.4f}); "
        f"threads {int8['engine']['threads']}, batch {int8['latency']['batch_size']}"
    )
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=140)
    for dims in args.dims:
        console.print(table(bench(dims, args.runs, args.out), dims))


if __name__ == "__main__":
    main()
