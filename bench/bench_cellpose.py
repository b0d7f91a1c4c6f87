"""Benchmark Cellpose (CPnet): per-tile and per-image latency and AP per engine and precision.

Compresses the shipped nuclei model, then in one run measures the engine latency of a batch of
224×224 tiles (batch 8, as cellpose runs them), end-to-end time per image (cellpose
normalisation, tiling, network, dynamics) and AP at IoU 0.5/0.75/0.9 on generated images never
used for training or calibration, for torch fp32 (eager), ONNX Runtime int8 and OpenVINO fp32 /
int8.

    .venv/bin/python bench/bench_cellpose.py [--runs 30] [--images 8] [--size 512]
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

VARIANTS = ["torch:fp32", "onnxruntime:int8", "openvino:fp32", "openvino:int8"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size", type=int, default=512, help="side of the generated test images")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "cellpose_nuclei.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(args.config)
    cfg.report.compare = VARIANTS
    cfg.report.latency.runs = args.runs
    cfg.report.latency.batch_size = 8
    cfg.report.energy.enabled = False
    cfg.data.evaluation.num_samples = args.images
    cfg.data.evaluation.shape = [args.size, args.size]
    report = fresh_experiment(cfg, args.out, "bench_cellpose")[0]
    rows = {r["variant"]: r for r in report["variants"]}
    ref = rows["torch:fp32"]
    batch = ref["latency"]["batch_size"]
    t = Table(title=f"Cellpose CPnet ({report['model']['parameters']:,} parameters), {describe_machine(machine())}")
    for h in [
        "variant",
        "ms/tile",
        "× torch",
        "× OV fp32",
        "s/image",
        "× torch",
        "AP50",
        "AP75",
        "AP90",
        "AP50 vs fp32",
    ]:
        t.add_column(h, justify="right")
    ov = rows["openvino:fp32"]["latency"]["median_ms"]
    for v in VARIANTS:
        r, g = rows[v], rows[v]["vs_ground_truth"]
        ms = r["latency"]["median_ms"]
        t.add_row(
            v,
            f"{ms / batch:.1f}",
            f"{ref['latency']['median_ms'] / ms:.2f}",
            f"{ov / ms:.2f}",
            f"{1 / r['units_per_s']:.2f}",
            f"{r['units_per_s'] / ref['units_per_s']:.2f}",
            f"{g['ap50']:.3f}",
            f"{g['ap75']:.3f}",
            f"{g['ap90']:.3f}",
            f"{r['vs_fp32']['ap50']:.3f}",
        )
    t.caption = (
        f"tiles 224×224, batch {batch}, threads {ref['engine']['threads']}, {args.runs} timed runs (median); "
        f"{ref['units']:g} generated {args.size}² images never used for training or calibration; "
        "s/image includes cellpose normalisation, tiling and dynamics (CPU)"
    )
    Console(width=170).print(t)


if __name__ == "__main__":
    main()
