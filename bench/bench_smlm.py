"""Benchmark DilatedLoc localization: frames/s and accuracy per engine and precision.

Compresses the shipped astigmatic model, then in one run measures the engine latency of a
batch of frames, end-to-end frames/s on the simulated test stack (post-processing included),
and Jaccard / RMSE / efficiency against ground truth, for torch fp32 (eager), ONNX Runtime
int8 and OpenVINO fp32 / int8.

    .venv/bin/python bench/bench_smlm.py [--runs 50] [--frames 400]
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

from efficientbioai.compression.pipeline import compress  # noqa: E402
from efficientbioai.config import dump_config, load_config  # noqa: E402
from efficientbioai.manifest import machine  # noqa: E402
from efficientbioai.run import run_inference  # noqa: E402

VARIANTS = ["torch:fp32", "onnxruntime:int8", "openvino:fp32", "openvino:int8"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "dilatedloc_astig3d.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(args.config)
    cfg.report.compare = VARIANTS
    cfg.report.latency.runs = args.runs
    cfg.report.energy.enabled = False
    cfg.simulation.test.frames = args.frames
    staged = args.out / "bench_smlm.yaml"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_text(dump_config(cfg))
    report = run_inference(compress(staged, args.out / "bench_smlm", overwrite=True))
    rows = {r["variant"]: r for r in report["variants"]}
    ref = rows["torch:fp32"]
    t = Table(title=f"DilatedLoc ({report['model']['parameters']:,} parameters), {machine()['cpu']}")
    for h in [
        "variant",
        "engine ms/batch",
        "× torch",
        "frames/s end-to-end",
        "× torch",
        "Jaccard",
        "RMSE xy nm",
        "RMSE z nm",
        "Eff. 3D",
        "Jaccard vs fp32",
    ]:
        t.add_column(h, justify="right")
    for v in VARIANTS:
        r, g = rows[v], rows[v]["vs_ground_truth"]
        t.add_row(
            v,
            f"{r['latency']['median_ms']:.1f}",
            f"{ref['latency']['median_ms'] / r['latency']['median_ms']:.2f}",
            f"{r['units_per_s']:.1f}",
            f"{r['units_per_s'] / ref['units_per_s']:.2f}",
            f"{g['jaccard']:.4f}",
            f"{g['rmse_lateral']:.1f}",
            f"{g['rmse_axial']:.1f}",
            f"{g['efficiency_3d']:.1f}",
            f"{r['vs_fp32']['jaccard']:.4f}",
        )
    t.caption = (
        f"batch {ref['latency']['batch_size']} frames of {report['model']['tile'][2:]}, "
        f"threads {ref['engine']['threads']}; {ref['units']:g} test frames never used for training"
    )
    Console(width=160).print(t)


if __name__ == "__main__":
    main()
